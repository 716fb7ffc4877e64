//! Interoperability: the Standard Webhooks reference library (Python, `standardwebhooks` from
//! PyPI, installed by `.ci/run`) verifies what we sign, and we verify what it signs — an
//! implementation of the specification that shares no code with ours.
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};
use vigie_webhook::{SigningSecret, sign, verify};

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

/// Runs `script` with the reference library; its stdout.
fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3").arg("-c").arg(script).args(args).output().expect("python3 runs (installed with the OS)");
    assert!(
        out.status.success(),
        "the reference library failed — is it installed (`python3 -m pip install standardwebhooks==1.0.0`, done by .ci/run)?\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

const VERIFY: &str = r#"
import sys
from standardwebhooks.webhooks import Webhook
secret, msg_id, ts, sig, body = sys.argv[1:6]
Webhook(secret).verify(body.encode(), {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig})
print("verified")
"#;

const SIGN: &str = r#"
import sys
from datetime import datetime, timezone
from standardwebhooks.webhooks import Webhook
secret, msg_id, ts, body = sys.argv[1:5]
print(Webhook(secret).sign(msg_id, datetime.fromtimestamp(int(ts), tz=timezone.utc), body))
"#;

#[test]
fn the_reference_library_verifies_our_signatures_also_during_a_rotation() {
    let (old, new) = (SigningSecret::generate(), SigningSecret::generate());
    let body = r#"{"id":"evt_01","type":"interaction.high_risk","data":{"risk_score":0.97,"platform_id":"deepseek","note":"é ✓"}}"#;
    let h = sign("evt_01", now(), body.as_bytes(), &[&new, &old]);
    let ts = h.timestamp.to_string();
    for secret in [&old, &new] {
        assert_eq!(python(VERIFY, &[&secret.expose(), &h.id, &ts, &h.signature, body]), "verified");
    }
    // And it refuses what it should: a changed body.
    let out = Command::new("python3").arg("-c").arg(VERIFY).args([&new.expose(), &h.id, &ts, &h.signature, "{}"]).output().expect("runs");
    assert!(!out.status.success(), "a changed body must not verify");
}

#[test]
fn we_verify_the_reference_librarys_signatures() {
    let secret = SigningSecret::generate();
    let body = r#"{"type":"webhook.test","data":{}}"#;
    let ts = now();
    let signature = python(SIGN, &[&secret.expose(), "msg_42", &ts.to_string(), body]);
    assert!(signature.starts_with("v1,"), "{signature}");
    let ts_text = ts.to_string();
    let header = |name: &str| match name {
        "webhook-id" => Some("msg_42"),
        "webhook-timestamp" => Some(ts_text.as_str()),
        "webhook-signature" => Some(signature.as_str()),
        _ => None,
    };
    assert_eq!(verify(header, body.as_bytes(), &[&secret], ts, 300), Ok(()));
    assert!(verify(header, b"{}", &[&secret], ts, 300).is_err());
}
