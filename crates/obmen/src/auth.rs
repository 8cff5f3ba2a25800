//! Exchange credentials: password hashing, HTTP Basic parsing, random tokens.
//!
//! Passwords are kept as salted, iterated SHA-256 (`sha256$<iterations>$<salt hex>$<digest hex>`)
//! and compared in constant time. The generated password has ~119 bits of entropy, so the cheap
//! hash is not the weak point; the iteration count keeps a configured human password from
//! being trivially brute-forced if the database leaks, while `checkauth` stays well under 5 ms.

use base64::Engine as _;
use rand::Rng as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

const ITERATIONS: u32 = 2048;
const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// A salted password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    iterations: u32,
    salt: [u8; 16],
    digest: [u8; 32],
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(***)")
    }
}

impl PasswordHash {
    /// Hashes `password` with a fresh random salt.
    pub fn new(password: &str) -> Self {
        let mut salt = [0u8; 16];
        rand::thread_rng().fill(&mut salt);
        Self {
            iterations: ITERATIONS,
            salt,
            digest: digest(password.as_bytes(), &salt, ITERATIONS),
        }
    }

    /// Parses the stored form.
    pub fn parse(stored: &str) -> Option<Self> {
        let mut parts = stored.split('$');
        if parts.next()? != "sha256" {
            return None;
        }
        let iterations: u32 = parts.next()?.parse().ok()?;
        let salt = hex_decode(parts.next()?)?.try_into().ok()?;
        let digest = hex_decode(parts.next()?)?.try_into().ok()?;
        if parts.next().is_some() || iterations == 0 {
            return None;
        }
        Some(Self {
            iterations,
            salt,
            digest,
        })
    }

    /// The stored form.
    pub fn to_stored(&self) -> String {
        format!(
            "sha256${}${}${}",
            self.iterations,
            hex(&self.salt),
            hex(&self.digest)
        )
    }

    /// Whether `password` (raw bytes as sent) matches, in constant time.
    pub fn verify(&self, password: &[u8]) -> bool {
        let d = digest(password, &self.salt, self.iterations);
        bool::from(d.ct_eq(&self.digest))
    }
}

fn digest(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut d: [u8; 32] = Sha256::new()
        .chain_update(salt)
        .chain_update(password)
        .finalize()
        .into();
    for _ in 1..iterations {
        d = Sha256::new()
            .chain_update(d)
            .chain_update(salt)
            .finalize()
            .into();
    }
    d
}

/// The exchange login: user name and password hash.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The login.
    pub user: String,
    /// The password hash.
    pub hash: PasswordHash,
}

/// What an `Authorization` header said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BasicAuth {
    /// No `Authorization: Basic` header.
    Absent,
    /// A header that does not decode.
    Malformed,
    /// Decoded login and password bytes.
    Given {
        /// Login as text (UTF-8, or windows-1251 when not UTF-8).
        user: String,
        /// Password bytes as sent.
        password: Vec<u8>,
    },
}

/// Parses an `Authorization` header value.
pub fn parse_basic(header: Option<&str>) -> BasicAuth {
    let Some(value) = header else {
        return BasicAuth::Absent;
    };
    let value = value.trim();
    let Some((scheme, rest)) = value.split_once(' ') else {
        return BasicAuth::Malformed;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return BasicAuth::Absent;
    }
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest.trim()) else {
        return BasicAuth::Malformed;
    };
    let Some(colon) = raw.iter().position(|&b| b == b':') else {
        return BasicAuth::Malformed;
    };
    let user = decode_text(&raw[..colon]);
    // A Windows-style `HOST\user` login is stripped to `user`, as Bitrix does.
    let user = match user.rsplit_once('\\') {
        Some((_, u)) => u.to_owned(),
        None => user,
    };
    BasicAuth::Given {
        user,
        password: raw[colon + 1..].to_vec(),
    }
}

impl Credentials {
    /// Whether the given login and password match. The password is tried as sent and, when it
    /// is not UTF-8, as windows-1251 converted to UTF-8 (1C may send either).
    pub fn check(&self, user: &str, password: &[u8]) -> bool {
        let user_ok: bool = user.as_bytes().ct_eq(self.user.as_bytes()).into();
        let mut pass_ok = self.hash.verify(password);
        if std::str::from_utf8(password).is_err() {
            let (text, _, _) = encoding_rs::WINDOWS_1251.decode(password);
            pass_ok |= self.hash.verify(text.as_bytes());
        }
        user_ok & pass_ok
    }
}

/// Decodes bytes as UTF-8, falling back to windows-1251.
pub fn decode_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => encoding_rs::WINDOWS_1251.decode(bytes).0.into_owned(),
    }
}

/// A random password of `len` unambiguous letters and digits.
pub fn generate_password(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// A random token of 32 lowercase hex digits (cookie values, `sessid`).
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill(&mut bytes);
    hex(&bytes)
}

/// SHA-256 of `value` as hex: how session cookies are kept in the database.
pub fn token_digest(value: &str) -> String {
    hex(&Sha256::digest(value.as_bytes()))
}

/// Constant-time equality of two strings.
pub fn ct_str_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_round_trip() {
        let h = PasswordHash::new("секрет-1");
        assert!(h.verify("секрет-1".as_bytes()));
        assert!(!h.verify(b"secret"));
        let stored = h.to_stored();
        assert!(!stored.contains("секрет"));
        let back = PasswordHash::parse(&stored).unwrap();
        assert!(back.verify("секрет-1".as_bytes()));
        assert!(PasswordHash::parse("sha256$1$zz$00").is_none());
        assert_ne!(
            PasswordHash::new("a").to_stored(),
            PasswordHash::new("a").to_stored()
        );
    }

    #[test]
    fn basic_header_parsing() {
        let enc = |s: &[u8]| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        assert_eq!(parse_basic(None), BasicAuth::Absent);
        assert_eq!(parse_basic(Some("Basic !!!")), BasicAuth::Malformed);
        assert_eq!(
            parse_basic(Some(&enc(b"SHOP\\admin:p:w"))),
            BasicAuth::Given {
                user: "admin".into(),
                password: b"p:w".to_vec()
            }
        );
        // windows-1251 login and password
        let (cp, _, _) = encoding_rs::WINDOWS_1251.encode("обмен:пароль");
        let BasicAuth::Given { user, password } = parse_basic(Some(&enc(&cp))) else {
            panic!("not parsed");
        };
        assert_eq!(user, "обмен");
        let creds = Credentials {
            user: "обмен".into(),
            hash: PasswordHash::new("пароль"),
        };
        assert!(creds.check(&user, &password));
        assert!(creds.check("обмен", "пароль".as_bytes()));
        assert!(!creds.check("обмен", b"parol"));
        assert!(!creds.check("other", "пароль".as_bytes()));
    }

    #[test]
    fn tokens_are_random_hex() {
        let a = random_token();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_token());
        assert_eq!(generate_password(20).len(), 20);
    }
}
