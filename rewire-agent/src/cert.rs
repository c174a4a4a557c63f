//! `rewire-agent cert`: the operator's CA for the host link, and the
//! certificates it issues (ECDSA P-256, both server and client use). An
//! operator with a PKI of their own can use it instead: what the agents check
//! is only "issued by the CA I was given" and the DNS name (docs/transport.md).

use std::fs;
use std::io::Write;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

use crate::tls::{agent_dns_name, SDS_DNS_NAME};
use crate::AgentError;

const CA_CN: &str = "librewire operator CA";

/// The longest validity `cert issue --days` takes (ten years).
pub const MAX_DAYS: u32 = 3650;

fn ca_params() -> Result<CertificateParams, AgentError> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_CN);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    // Valid from an hour ago for twenty years (the leaves it issues are capped at ten). When
    // rebuilt to issue (below) the dates do not matter: a leaf names its issuer by subject and key.
    let now = std::time::SystemTime::now();
    p.not_before = (now - std::time::Duration::from_secs(3600)).into();
    p.not_after = (now + std::time::Duration::from_secs(20 * 365 * 86400)).into();
    Ok(p)
}

fn cert_err(e: rcgen::Error) -> AgentError {
    AgentError::Config(format!("certificate: {e}"))
}

/// Write `bytes` to `path` with mode 0600 (private keys), refusing to replace a file.
fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<(), AgentError> {
    let mut o = fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(if private { 0o600 } else { 0o644 });
    }
    let mut f = o.open(path).map_err(|e| AgentError::io(path, e))?;
    f.write_all(bytes).map_err(|e| AgentError::io(path, e))?;
    f.sync_all().map_err(|e| AgentError::io(path, e))
}

/// Create `dir/ca.pem` and `dir/ca.key`.
pub fn make_ca(dir: &Path) -> Result<(), AgentError> {
    fs::create_dir_all(dir).map_err(|e| AgentError::io(dir, e))?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(cert_err)?;
    let cert = ca_params()?.self_signed(&key).map_err(cert_err)?;
    write_new(&dir.join("ca.key"), key.serialize_pem().as_bytes(), true)?;
    write_new(&dir.join("ca.pem"), cert.pem().as_bytes(), false)
}

/// Issue a certificate for an agent (`name`) or, with `name = None`, for the
/// SDS; writes `out/NAME.pem` and `out/NAME.key` (`sds.*` for the SDS).
pub fn issue(ca_dir: &Path, name: Option<&str>, out: &Path, days: u32) -> Result<(), AgentError> {
    if days == 0 || days > MAX_DAYS {
        return Err(AgentError::Config(format!(
            "--days {days}: from 1 to {MAX_DAYS}"
        )));
    }
    let ca_key_pem = fs::read_to_string(ca_dir.join("ca.key"))
        .map_err(|e| AgentError::io(&ca_dir.join("ca.key"), e))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(cert_err)?;
    // The issuer as rcgen needs it: the same subject and key as ca.pem (the
    // leaf's issuer name and authority key id come from these, not from ca.pem's bytes).
    let issuer = ca_params()?.self_signed(&ca_key).map_err(cert_err)?;
    let (dns, file) = match name {
        Some(n) => {
            if !rewire_core::link::valid_name(n) {
                return Err(AgentError::Config(format!(
                    "bad host name {n:?}: letters, digits and '-', at most 63"
                )));
            }
            (agent_dns_name(n), n.to_string())
        }
        None => (SDS_DNS_NAME.to_string(), "sds".to_string()),
    };
    let mut p = CertificateParams::new(vec![dns.clone()]).map_err(cert_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, dns);
    p.distinguished_name = dn;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let now = std::time::SystemTime::now();
    p.not_before = (now - std::time::Duration::from_secs(3600)).into();
    p.not_after = (now + std::time::Duration::from_secs(u64::from(days) * 86400)).into();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(cert_err)?;
    let cert = p.signed_by(&key, &issuer, &ca_key).map_err(cert_err)?;
    fs::create_dir_all(out).map_err(|e| AgentError::io(out, e))?;
    write_new(
        &out.join(format!("{file}.key")),
        key.serialize_pem().as_bytes(),
        true,
    )?;
    write_new(
        &out.join(format!("{file}.pem")),
        cert.pem().as_bytes(),
        false,
    )
}
