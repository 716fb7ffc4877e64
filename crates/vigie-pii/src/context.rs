//! Context words: the words around a candidate that make it more or less likely to be what its
//! shape says, in English, French, German, Spanish, Italian and Dutch.
//!
//! Matching is ASCII-case-insensitive, on whole words (the bytes around a match are not ASCII
//! letters or digits), in a window of [`BEFORE`] bytes before the candidate and [`AFTER`]
//! bytes after it. It runs only on candidates that passed their validator, so its cost does
//! not grow with the text.
use crate::PiiType;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Bytes looked at before a candidate.
pub const BEFORE: usize = 72;
/// How far before a candidate a negative word may end and still name it.
pub const NEGATIVE_REACH: usize = 32;
/// Bytes looked at after a candidate.
pub const AFTER: usize = 48;

/// Words that make a type more likely, per type.
const POSITIVE: &[(PiiType, &[&str])] = &[
    (
        PiiType::CreditCard,
        &[
            "card",
            "credit card",
            "debit card",
            "carte",
            "carte bancaire",
            "cb",
            "visa",
            "mastercard",
            "amex",
            "karte",
            "kreditkarte",
            "kartennummer",
            "creditcardnummer",
            "kreditkartennummer",
            "numéro de carte",
            "número de tarjeta",
            "numero di carta",
            "carte de crédit",
            "tarjeta",
            "carta",
            "carta di credito",
            "creditcard",
            "kaart",
            "pan",
            "cvv",
            "cvc",
            "expiry",
            "expiration",
        ],
    ),
    (
        PiiType::Iban,
        &[
            "iban",
            "bank account",
            "account",
            "compte",
            "rib",
            "konto",
            "bankverbindung",
            "cuenta",
            "conto",
            "rekening",
            "rekeningnummer",
            "bic",
            "swift",
            "virement",
            "überweisung",
            "transferencia",
            "bonifico",
            "overschrijving",
        ],
    ),
    (
        PiiType::FrNir,
        &[
            "nir",
            "sécurité sociale",
            "securite sociale",
            "sécu",
            "secu",
            "insee",
            "social security",
            "carte vitale",
            "vitale",
            "ss",
            "numéro de sécurité sociale",
        ],
    ),
    (PiiType::FrSiren, &["siren", "entreprise", "société", "societe", "rcs", "company number", "registre du commerce"]),
    (PiiType::FrSiret, &["siret", "établissement", "etablissement", "entreprise", "société", "societe"]),
    (PiiType::Ssn, &["ssn", "social security", "social security number", "soc sec", "ss#", "ssn#"]),
    (PiiType::EsDni, &["dni", "nif", "documento nacional", "documento de identidad", "identidad", "carnet"]),
    (PiiType::EsNie, &["nie", "extranjero", "extranjería", "extranjeria", "identidad", "nif"]),
    (PiiType::ItFiscalCode, &["codice fiscale", "cf", "c.f", "fiscal code", "tessera sanitaria", "codice"]),
    (PiiType::NlBsn, &["bsn", "burgerservicenummer", "sofinummer", "sofi", "citizen service number", "burgerservice"]),
    (
        PiiType::BeNationalNumber,
        &[
            "rijksregisternummer",
            "registro nazionale",
            "numero nazionale",
            "número nacional",
            "registro nacional",
            "nationalregisternummer",
            "nationalnummer",
            "belge",
            "belga",
            "belgische",
            "belgian",
            "belgisch",
            "belgio",
            "bélgica",
            "rijksregister",
            "numéro national",
            "numero national",
            "registre national",
            "national number",
            "national register",
            "insz",
            "niss",
            "nn",
        ],
    ),
    (PiiType::PlPesel, &["pesel"]),
    (
        PiiType::DeTaxId,
        &[
            "steuer-id",
            "steuerid",
            "steuer id",
            "steueridentifikationsnummer",
            "identifikationsnummer",
            "idnr",
            "tin",
            "tax id",
            "steuernummer",
            "tax identification",
            "steuer-identifikationsnummer",
        ],
    ),
    (PiiType::UkNino, &["national insurance", "nino", "ni number", "insurance number", "ni no"]),
    (
        PiiType::Phone,
        &[
            "phone",
            "tel",
            "tél",
            "téléphone",
            "telephone",
            "telefon",
            "teléfono",
            "telefono",
            "telefoon",
            "mobile",
            "mobil",
            "móvil",
            "movil",
            "portable",
            "handy",
            "cellulare",
            "cell",
            "cellphone",
            "gsm",
            "whatsapp",
            "appeler",
            "appelle",
            "appelez",
            "rappeler",
            "rappelez",
            "rückruf",
            "richiamare",
            "terugbellen",
            "call",
            "rufnummer",
            "fax",
            "my number",
            "mon numéro",
            "meine nummer",
            "mi número",
            "mio numero",
            "mijn nummer",
            "text me",
            "ruf mich",
            "call me",
            "numero di telefono",
            "número de teléfono",
            "numéro de téléphone",
            "telefonnummer",
            "telefoonnummer",
            "cellulaire",
            "anrufen",
            "llamar",
            "llámame",
            "chiamare",
            "chiamami",
            "bellen",
            "bel",
            "joindre",
            "erreichbar",
            "mobiel",
            "sms",
        ],
    ),
    (PiiType::IpAddress, &["ip", "ip address", "adresse ip", "server", "serveur", "host", "ipv4", "ipv6", "gateway", "dns", "subnet"]),
    (PiiType::Email, &["email", "e-mail", "mail", "courriel", "correo", "posta", "adresse"]),
    (
        PiiType::ApiKey,
        &[
            "key",
            "api key",
            "apikey",
            "api_key",
            "secret",
            "token",
            "password",
            "passwd",
            "pwd",
            "mot de passe",
            "passwort",
            "kennwort",
            "contraseña",
            "clave",
            "chiave",
            "wachtwoord",
            "sleutel",
            "credentials",
            "bearer",
            "mistral",
            "openai",
            "anthropic",
        ],
    ),
];

/// Words that make any numeric or coded candidate less likely: it is an order, an invoice, a
/// tracking number, a version, a hash…
const NEGATIVE: &[&str] = &[
    "order",
    "order number",
    "commande",
    "bestellung",
    "bestellnummer",
    "pedido",
    "ordine",
    "bestelling",
    "bestelnummer",
    "invoice",
    "facture",
    "rechnung",
    "rechnungsnummer",
    "factura",
    "fattura",
    "factuur",
    "tracking",
    "suivi",
    "sendungsnummer",
    "seguimiento",
    "spedizione",
    "ref",
    "réf",
    "reference",
    "référence",
    "referenz",
    "referencia",
    "riferimento",
    "ticket",
    "sku",
    "isbn",
    "serial",
    "uuid",
    "hash",
    "sha",
    "sha1",
    "sha256",
    "md5",
    "commit",
    "checksum",
    "timestamp",
    "pid",
    "port",
    "artikel",
    "article",
    "artículo",
    "articolo",
    "product",
    "produit",
    "produkt",
    "producto",
    "prodotto",
    "qty",
    "quantity",
    "total",
    "amount",
    "montant",
    "betrag",
    "importe",
    "importo",
    "bedrag",
    "price",
    "prix",
    "preis",
    "precio",
    "prezzo",
    "prijs",
    "transaction",
    "txn",
    "request",
    "req",
    "colis",
    "paket",
    "parcel",
    "paquete",
    "pacco",
    "pakket",
    "shipment",
    "expédition",
    "lieferung",
    "envío",
    "customer",
    "customer number",
    "client number",
    "kundennummer",
    "kunde",
    "klantnummer",
    "numéro client",
    "numéro de client",
    "número de cliente",
    "numero cliente",
    "contract",
    "contrat",
    "vertrag",
    "vertragsnummer",
    "contratto",
    "contrato",
    "contract number",
    "euros",
    "euro",
    "eur",
    "usd",
    "dollars",
    "€",
    "$",
];

/// Words that say a dotted number is a version, not an address.
const VERSION: &[&str] =
    &["version", "versión", "versione", "versie", "build", "release", "ver", "v", "firmware", "chrome", "firefox", "safari", "edge", "os"];
/// Words that make a number less likely only right before it (`Dossier 0587630578`, `case
/// #12345678`, `page 12`), since they also start sentences that go on to give a phone number
/// ("Dossier suivi par Mme Martin, 01 42 68 53 00"). Each must end in a letter or `.`/`°`: the match
/// needs a boundary after it, so a symbol glued to the number (`#123`) could never match.
const NAMING_ONLY: &[&str] = &["dossier", "case", "page", "line", "ligne", "zeile", "lot", "session", "batch", "n°", "no.", "nr."];
/// The mask bit of [`NAMING_ONLY`] words.
const NAMING_BIT: u32 = 1 << 30;
/// How far before a candidate a [`NAMING_ONLY`] word may end.
const NAMING_REACH: usize = 6;

/// The mask bit of [`VERSION`] words.
const VERSION_BIT: u32 = 1 << 31;

/// What the words around a candidate say.
#[derive(Debug, Clone, Copy)]
pub struct Signals {
    /// Bit `t as usize` set when a word of type `t` is near.
    pub positive: u32,
    /// A negative word is near (a version word is one too).
    pub negative: bool,
    /// A version word is near.
    pub version: bool,
    /// Per type, the bytes between the candidate and the nearest word of the type.
    pub nearest: [u16; PiiType::ALL.len()],
}

impl Default for Signals {
    fn default() -> Self {
        Signals { positive: 0, negative: false, version: false, nearest: [u16::MAX; PiiType::ALL.len()] }
    }
}

impl Signals {
    /// Whether a word of this type is near.
    pub fn has(self, t: PiiType) -> bool {
        self.positive & (1 << t as u32) != 0
    }

    /// Bytes between the candidate and the nearest word of type `t` (`u16::MAX` when none).
    pub fn distance(self, t: PiiType) -> u16 {
        self.nearest[t as usize]
    }
}

/// The compiled context words.
#[derive(Debug, Clone)]
pub struct Context {
    automaton: AhoCorasick,
    /// Per pattern: the types it supports (bit mask), 0 for a negative word.
    masks: Vec<u32>,
}

impl Context {
    /// Compiles the word lists.
    pub fn new() -> Context {
        let mut words: Vec<&str> = Vec::new();
        let mut masks: Vec<u32> = Vec::new();
        for (t, list) in POSITIVE {
            for w in *list {
                match words.iter().position(|x| x == w) {
                    Some(i) => masks[i] |= 1 << *t as u32,
                    None => {
                        words.push(w);
                        masks.push(1 << *t as u32);
                    }
                }
            }
        }
        for w in NEGATIVE {
            if !words.contains(w) {
                words.push(w);
                masks.push(0);
            }
        }
        for w in VERSION {
            words.push(w);
            masks.push(VERSION_BIT);
        }
        for w in NAMING_ONLY {
            if !words.contains(w) {
                words.push(w);
                masks.push(NAMING_BIT);
            }
        }
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(&words)
            .expect("the context word lists are small, static and valid");
        Context { automaton, masks }
    }

    /// The signals in the windows around `text[start..end]`.
    pub fn around(&self, text: &[u8], start: usize, end: usize) -> Signals {
        let mut s = Signals::default();
        // The windows stop at a sentence boundary: the next sentence's words are about
        // something else ("SIREN 653 210 658. Il mio cellulare è …").
        let mut from = start.saturating_sub(BEFORE);
        if let Some(k) = (from..start).rev().find(|&k| sentence_ends(text, k)) {
            from = k + 1;
        }
        let mut to = (end + AFTER).min(text.len());
        if let Some(k) = (end..to).find(|&k| sentence_ends(text, k)) {
            to = k;
        }
        self.collect(text, from, start, start, &mut s);
        self.collect(text, end, to, end, &mut s);
        s
    }

    fn collect(&self, text: &[u8], from: usize, to: usize, edge: usize, s: &mut Signals) {
        if from >= to {
            return;
        }
        for m in self.automaton.find_iter(&text[from..to]) {
            let (a, b) = (from + m.start(), from + m.end());
            let boundary_before = !letter_before(text, a);
            let boundary_after = !letter_at(text, b);
            if boundary_before && boundary_after {
                // A negative word counts only when it names the value: just before it
                // ("Order #100234567", "Bestellnummer: 4500012345"), not anywhere near
                // ("Order 12345: ship to Jean, card 4532 …").
                let names_it = b <= edge && edge - b <= NEGATIVE_REACH;
                match self.masks[m.pattern().as_usize()] {
                    0 if names_it => s.negative = true,
                    VERSION_BIT if names_it => {
                        s.negative = true;
                        s.version = true;
                    }
                    NAMING_BIT if b <= edge && edge - b <= NAMING_REACH => s.negative = true,
                    0 | VERSION_BIT | NAMING_BIT => {}
                    mask => {
                        s.positive |= mask;
                        // People name a value before they write it: a word after it counts
                        // as four times as far.
                        let distance = if b <= edge { edge - b } else { a.saturating_sub(edge) * 4 };
                        let distance = u16::try_from(distance).unwrap_or(u16::MAX - 1);
                        for t in PiiType::ALL {
                            if mask & (1 << t as u32) != 0 {
                                let d = &mut s.nearest[t as usize];
                                *d = (*d).min(distance);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Whether a sentence ends at `k`: a line break, or `.`, `!` or `?` followed by a space and a
/// capital, possibly after a bracket or quote (so `Tel. 030…` and `IdNr. (54…` do not end one).
fn sentence_ends(text: &[u8], k: usize) -> bool {
    match text[k] {
        b'\n' => true,
        b'.' | b'!' | b'?' => {
            // The next sentence may open with a bracket or quote: `… 984. (Tel. +48 …)`.
            let next = match text.get(k + 2) {
                Some(b'(' | b'"' | b'[' | b'\'') => text.get(k + 3),
                other => other,
            };
            text.get(k + 1) == Some(&b' ') && next.is_some_and(|&c| c.is_ascii_uppercase() || c >= 0xC3)
        }
        _ => false,
    }
}

/// Whether the character starting at `pos` is a letter or digit (of any script).
fn letter_at(text: &[u8], pos: usize) -> bool {
    match text.get(pos) {
        None => false,
        Some(c) if c.is_ascii() => c.is_ascii_alphanumeric(),
        Some(_) => {
            let tail = &text[pos..text.len().min(pos + 4)];
            let valid = match std::str::from_utf8(tail) {
                Ok(s) => s,
                Err(e) => std::str::from_utf8(&tail[..e.valid_up_to()]).unwrap_or_default(),
            };
            valid.chars().next().is_some_and(char::is_alphanumeric)
        }
    }
}

/// Whether the character ending just before `pos` is a letter or digit (of any script).
fn letter_before(text: &[u8], pos: usize) -> bool {
    if pos == 0 {
        return false;
    }
    if text[pos - 1].is_ascii() {
        return text[pos - 1].is_ascii_alphanumeric();
    }
    let mut k = pos - 1;
    while k > 0 && pos - k < 4 && (text[k] as i8) < -0x40 {
        k -= 1;
    }
    letter_at(text, k)
}

impl Default for Context {
    fn default() -> Self {
        Context::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_found_whole_in_any_case_and_language() {
        let c = Context::new();
        let t = b"Mon NUMERO: voici ma Carte Bancaire 4532";
        let s = c.around(t, 36, 40);
        assert!(s.has(PiiType::CreditCard) && !s.negative);
        let t = b"Martin paid 732829320";
        assert!(!c.around(t, 12, 21).has(PiiType::DeTaxId), "tin inside Martin is not a word");
        let t = "meine Steuer-ID lautet 86095742719".as_bytes();
        assert!(c.around(t, 23, 34).has(PiiType::DeTaxId));
        let t = "Bestellnummer 4500012345".as_bytes();
        assert!(c.around(t, 14, 24).negative);
        let t = "mi contraseña es X".as_bytes();
        assert!(c.around(t, 17, 18).has(PiiType::ApiKey));
    }
}
