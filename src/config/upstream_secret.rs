//! An upstream's client secret typed into the admin pages or sent to the admin API. Herald must
//! send it to the upstream, so it cannot be hashed; the managed document keeps it only sealed
//! with the key-encryption key (`client_secret_sealed`, AES-256-GCM), bound to the upstream's
//! id and provider (`kind`, `issuer`, `domain`), and each replica opens it in memory when the
//! document becomes settings. A sealed secret therefore never follows its upstream to another
//! provider: changed there, it no longer opens, and the admin must type the secret again.

use toml::{Table, Value};

use crate::tokens::kek::{KeyEncryption, SealError};

/// The managed document's key for a sealed secret.
pub const SEALED: &str = "client_secret_sealed";

/// What the ciphertext of upstream `table`'s secret is bound to.
fn context(table: &Table) -> String {
    let text = |k: &str| table.get(k).and_then(Value::as_str).unwrap_or_default();
    format!(
        "herald upstream client secret\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
        text("id"),
        text("kind"),
        text("issuer"),
        text("domain")
    )
}

/// Seals `secret` into upstream `table`, in place of any other source of its secret.
pub fn seal(kek: &KeyEncryption, table: &mut Table, secret: &str) -> Result<(), SealError> {
    let sealed = kek.seal_text(secret, &context(table))?;
    table.remove("client_secret");
    table.remove("client_secret_env");
    table.insert(SEALED.into(), Value::String(sealed));
    Ok(())
}

/// Opens upstream `table`'s sealed secret into `client_secret`, next to the sealed value, which
/// stays to say where the secret came from. One that does not open is left alone, and the
/// configuration's validation names it.
pub fn open(kek: &KeyEncryption, table: &mut Table) {
    let Some(Value::String(sealed)) = table.get(SEALED) else {
        return;
    };
    match kek.open_text(sealed, &context(table)) {
        Ok(secret) => {
            table.insert("client_secret".into(), Value::String(secret));
        }
        Err(e) => {
            let id = table.get("id").and_then(Value::as_str).unwrap_or_default();
            tracing::warn!(upstream = id, error = %e, "an upstream's stored client secret does not open");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(issuer: &str) -> Table {
        toml::from_str(&format!(
            "id = \"a\"\nkind = \"oidc\"\nissuer = \"{issuer}\"\nclient_secret_env = \"HERALD_UPSTREAM_A\""
        ))
        .unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_provider() {
        let kek = KeyEncryption::from_base64(&KeyEncryption::generate_base64()).unwrap();
        let mut t = upstream("https://idp.example.com");
        seal(&kek, &mut t, "typed-secret").unwrap();
        assert!(!t.contains_key("client_secret_env"));
        assert!(!toml::to_string(&t).unwrap().contains("typed-secret"));
        let mut opened = t.clone();
        open(&kek, &mut opened);
        assert_eq!(opened["client_secret"].as_str(), Some("typed-secret"));
        // Sent to another issuer, the secret stays sealed.
        let mut moved = t.clone();
        moved.insert(
            "issuer".into(),
            Value::String("https://evil.example".into()),
        );
        open(&kek, &mut moved);
        assert!(!moved.contains_key("client_secret"));
        // Without the key, likewise.
        let mut keyless = t;
        open(&KeyEncryption::none(), &mut keyless);
        assert!(!keyless.contains_key("client_secret"));
        assert_eq!(
            seal(&KeyEncryption::none(), &mut upstream("https://x"), "s"),
            Err(SealError::NoKek)
        );
    }
}
