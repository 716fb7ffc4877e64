//! The organisation `vigie demo` plays: forty people of a fictitious European company with
//! departments, managers and security-awareness training dates, as the XDR's people directory
//! imports them (CSV). Person `i` is `traffic::person(i)`, so a resumed demo finds the same
//! people.
use crate::traffic::person;
use chrono::NaiveDate;

/// The company's name.
pub const COMPANY: &str = "Alpenrose Logistics";
/// Its e-mail domain (reserved for examples: nothing is ever delivered there).
pub const DOMAIN: &str = "alpenrose-logistics.example";

/// A department.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Department {
    /// The CEO and their office.
    Executive,
    /// Accounting, treasury, controlling.
    Finance,
    /// Account executives and sales operations.
    Sales,
    /// Software, infrastructure and the security team.
    Engineering,
    /// Counsel and paralegals.
    Legal,
    /// People, recruiting and payroll.
    Hr,
    /// Content, design, growth.
    Marketing,
    /// Customer support and success.
    Support,
}

impl Department {
    /// Every department.
    pub const ALL: [Department; 8] = [
        Department::Executive,
        Department::Finance,
        Department::Sales,
        Department::Engineering,
        Department::Legal,
        Department::Hr,
        Department::Marketing,
        Department::Support,
    ];

    /// Its name in the directory.
    pub fn name(self) -> &'static str {
        match self {
            Department::Executive => "Executive",
            Department::Finance => "Finance",
            Department::Sales => "Sales",
            Department::Engineering => "Engineering",
            Department::Legal => "Legal",
            Department::Hr => "HR",
            Department::Marketing => "Marketing",
            Department::Support => "Support",
        }
    }
}

/// When a person last took the security-awareness training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Training {
    /// This many days before the organisation was created.
    DaysAgo(u32),
    /// Never.
    Never,
}

/// A member of the organisation.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    /// Their first name.
    pub first: &'static str,
    /// Their last name.
    pub last: &'static str,
    /// Their department.
    pub department: Department,
    /// Their job.
    pub title: &'static str,
    /// Their manager's index in [`MEMBERS`] (none for the CEO).
    pub manager: Option<usize>,
    /// Their last training.
    pub training: Training,
}

use Department::*;
use Training::*;

const fn m(
    first: &'static str,
    last: &'static str,
    department: Department,
    title: &'static str,
    manager: usize,
    training: Training,
) -> Member {
    Member { first, last, department, title, manager: Some(manager), training }
}

/// Everyone, person `i` at index `i`: the CEO first, then the department heads (who report to
/// the CEO), then their teams. About a third trained over a year ago, three never.
pub const MEMBERS: [Member; 40] = [
    Member {
        first: "Claire",
        last: "Fontaine",
        department: Executive,
        title: "Chief Executive Officer",
        manager: None,
        training: DaysAgo(120),
    },
    m("Matthias", "Keller", Finance, "Chief Financial Officer", 0, DaysAgo(200)),
    m("Giulia", "Romano", Sales, "Head of Sales", 0, DaysAgo(400)),
    m("Pieter", "de Vries", Engineering, "Chief Technology Officer", 0, DaysAgo(90)),
    m("Carmen", "Ortega", Legal, "General Counsel", 0, DaysAgo(30)),
    m("Agnieszka", "Nowak", Hr, "HR Director", 0, DaysAgo(250)),
    m("Léa", "Girard", Marketing, "Head of Marketing", 0, DaysAgo(500)),
    m("Javier", "Morales", Support, "Head of Customer Support", 0, DaysAgo(60)),
    m("Sophie", "Lambert", Executive, "Chief of Staff", 0, DaysAgo(150)),
    m("Lukas", "Becker", Finance, "Accounts Payable Specialist", 1, DaysAgo(540)),
    m("Marta", "Kowalska", Finance, "Financial Analyst", 1, DaysAgo(100)),
    m("Antoine", "Dubois", Finance, "Financial Controller", 1, DaysAgo(420)),
    m("Elena", "Bianchi", Finance, "Treasury Analyst", 1, DaysAgo(45)),
    m("Jan", "Jansen", Sales, "Account Executive", 2, DaysAgo(380)),
    m("Chiara", "Ricci", Sales, "Account Executive", 2, DaysAgo(210)),
    m("Hugo", "Martin", Sales, "Sales Engineer", 2, Never),
    m("Isabel", "Navarro", Sales, "Sales Operations Manager", 2, DaysAgo(70)),
    m("Tomasz", "Wiśniewski", Sales, "Key Account Manager", 2, DaysAgo(460)),
    m("Inès", "Moreau", Engineering, "SOC Analyst", 3, DaysAgo(20)),
    m("Felix", "Schneider", Engineering, "Backend Engineer", 3, DaysAgo(300)),
    m("Sanne", "Bakker", Engineering, "Frontend Engineer", 3, DaysAgo(150)),
    m("Marco", "Esposito", Engineering, "DevOps Engineer", 3, DaysAgo(420)),
    m("Katarzyna", "Zielińska", Engineering, "Data Engineer", 3, DaysAgo(80)),
    m("Daan", "Visser", Engineering, "Security Engineer", 3, DaysAgo(35)),
    m("Pablo", "Ruiz", Engineering, "Backend Engineer", 3, Never),
    m("Hannah", "Fischer", Engineering, "QA Engineer", 3, DaysAgo(600)),
    m("Lorenzo", "Conti", Legal, "Legal Counsel", 4, DaysAgo(190)),
    m("Emma", "Peeters", Legal, "Paralegal", 4, DaysAgo(410)),
    m("Julien", "Lefèvre", Hr, "HR Business Partner", 5, DaysAgo(130)),
    m("Anna", "Schmidt", Hr, "Recruiter", 5, DaysAgo(390)),
    m("Lucía", "Fernández", Hr, "Payroll Specialist", 5, DaysAgo(260)),
    m("Francesca", "Greco", Marketing, "Content Manager", 6, DaysAgo(170)),
    m("Maximilian", "Wagner", Marketing, "Growth Marketer", 6, DaysAgo(700)),
    m("Noémie", "Roux", Marketing, "Designer", 6, Never),
    m("Bram", "Mulder", Marketing, "Marketing Analyst", 6, DaysAgo(220)),
    m("Piotr", "Kamiński", Support, "Support Engineer", 7, DaysAgo(440)),
    m("Alba", "Romero", Support, "Support Agent", 7, DaysAgo(50)),
    m("Sebastian", "Hoffmann", Support, "Support Agent", 7, DaysAgo(370)),
    m("Valentina", "Marino", Support, "Customer Success Manager", 7, DaysAgo(110)),
    m("Camille", "Bernard", Support, "Support Agent", 7, DaysAgo(280)),
];

/// The person who keeps pasting card numbers and IBANs (trained over a year ago; reports to the
/// CFO).
pub const OFFENDER: usize = 9;
/// The SOC analyst on duty.
pub const ANALYST: usize = 18;

impl Member {
    /// `First Last`.
    pub fn name(&self) -> String {
        format!("{} {}", self.first, self.last)
    }

    /// `first.last@DOMAIN`, accents dropped and spaces removed.
    pub fn email(&self) -> String {
        format!("{}.{}@{DOMAIN}", ascii(self.first), ascii(self.last))
    }
}

/// Lower-case ASCII for an e-mail's local part: letters without their accents, spaces and
/// apostrophes dropped.
fn ascii(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let c = c.to_lowercase().next().unwrap_or(c);
            Some(match c {
                'á' | 'à' | 'â' | 'ä' | 'ą' => 'a',
                'é' | 'è' | 'ê' | 'ë' | 'ę' => 'e',
                'í' | 'ì' | 'î' | 'ï' => 'i',
                'ó' | 'ò' | 'ô' | 'ö' => 'o',
                'ú' | 'ù' | 'û' | 'ü' => 'u',
                'ç' | 'ć' => 'c',
                'ñ' | 'ń' => 'n',
                'ł' => 'l',
                'ś' | 'š' => 's',
                'ź' | 'ż' | 'ž' => 'z',
                c if c.is_ascii_alphanumeric() => c,
                _ => return None,
            })
        })
        .collect()
}

/// The member at `i`.
pub fn member(i: usize) -> &'static Member {
    &MEMBERS[i % MEMBERS.len()]
}

/// The members at `which` as CSV (`POST /api/v1/people/import`), training dates counted back
/// from `today`.
pub fn people_csv_of(today: NaiveDate, which: &[usize]) -> String {
    let mut csv = String::from("user_id,display_name,email,manager_email,department,training_date\n");
    for (i, p) in which.iter().filter_map(|&i| MEMBERS.get(i).map(|p| (i, p))) {
        let manager = p.manager.map(|m| MEMBERS[m].email()).unwrap_or_default();
        let training = match p.training {
            DaysAgo(d) => (today - chrono::Duration::days(i64::from(d))).format("%Y-%m-%d").to_string(),
            Never => String::new(),
        };
        csv.push_str(&format!("{},{},{},{manager},{},{training}\n", person(i), p.name(), p.email(), p.department.name()));
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everyone_but_the_ceo_has_a_manager_and_heads_report_to_the_ceo() {
        assert_eq!(MEMBERS[0].manager, None);
        for (i, p) in MEMBERS.iter().enumerate().skip(1) {
            let boss = p.manager.expect("a manager");
            assert!(boss < i, "{} reports to someone listed before them", p.name());
            let head = MEMBERS[boss].manager == Some(0) && MEMBERS[boss].department == p.department;
            assert!(boss == 0 || head, "{} reports to their department's head", p.name());
        }
        for d in Department::ALL {
            assert!(MEMBERS.iter().any(|p| p.department == d), "{} has people", d.name());
        }
    }

    #[test]
    fn about_a_third_trained_over_a_year_ago_and_a_few_never() {
        let old = MEMBERS.iter().filter(|p| matches!(p.training, DaysAgo(d) if d > 365)).count();
        let never = MEMBERS.iter().filter(|p| p.training == Never).count();
        assert!((11..=16).contains(&old), "{old} over a year");
        assert!((2..=5).contains(&never), "{never} never");
        assert!(matches!(MEMBERS[OFFENDER].training, DaysAgo(d) if d > 365));
        assert!(MEMBERS[OFFENDER].manager.is_some());
    }

    #[test]
    fn e_mails_are_ascii_first_dot_last_and_unique() {
        assert_eq!(MEMBERS[17].email(), "tomasz.wisniewski@alpenrose-logistics.example");
        assert_eq!(MEMBERS[3].email(), "pieter.devries@alpenrose-logistics.example");
        let mut all: Vec<String> = MEMBERS.iter().map(Member::email).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), MEMBERS.len());
        let today = NaiveDate::from_ymd_opt(2026, 6, 1).expect("a date");
        let everyone: Vec<usize> = (0..MEMBERS.len()).collect();
        assert_eq!(vigie_xdr::people::check_csv(people_csv_of(today, &everyone).as_bytes(), today), Ok(MEMBERS.len()));
        let some = people_csv_of(today, &[OFFENDER, 99]);
        assert_eq!(some.lines().count(), 2, "a header and the one member that exists: {some}");
        assert!(some.contains(&person(OFFENDER).to_string()));
    }
}
