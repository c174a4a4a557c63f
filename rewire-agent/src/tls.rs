//! Mutual TLS on the host link: TLS 1.3 only, every peer must present a
//! certificate the operator's CA issued. Roles come from the certificate's
//! DNS name: `sds.rewire.invalid` is the SDS; `NAME.agent.rewire.invalid` is
//! the agent of host NAME (`.invalid` is reserved, RFC 2606: it can never be
//! a real host's name).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::AgentError;

/// The SDS's name on the link.
pub const SDS_DNS_NAME: &str = "sds.rewire.invalid";

/// The name in the certificate of host `name`'s agent.
pub fn agent_dns_name(name: &str) -> String {
    format!("{name}.agent.rewire.invalid")
}

/// What the agent was given: the CA it trusts and its own certificate.
pub struct Tls {
    pub server: Arc<ServerConfig>,
    pub client: Arc<ClientConfig>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Tls {
    pub fn load(ca: &Path, cert: &Path, key: &Path) -> Result<Tls, AgentError> {
        let mut roots = RootCertStore::empty();
        let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
            .map_err(|e| AgentError::Config(format!("{}: {e}", ca.display())))?
            .collect::<Result<_, _>>()
            .map_err(|e| AgentError::Config(format!("{}: {e}", ca.display())))?;
        if cas.is_empty() {
            return Err(AgentError::Config(format!(
                "{}: no certificate",
                ca.display()
            )));
        }
        for c in cas {
            roots
                .add(c)
                .map_err(|e| AgentError::Config(format!("{}: {e}", ca.display())))?;
        }
        let roots = Arc::new(roots);
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|e| AgentError::Config(format!("{}: {e}", cert.display())))?
            .collect::<Result<_, _>>()
            .map_err(|e| AgentError::Config(format!("{}: {e}", cert.display())))?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| AgentError::Config(format!("{}: {e}", key.display())))?;

        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|e| AgentError::Config(format!("client verifier: {e}")))?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| AgentError::Config(format!("tls: {e}")))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| AgentError::Config(format!("{}: {e}", cert.display())))?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| AgentError::Config(format!("tls: {e}")))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| AgentError::Config(format!("{}: {e}", cert.display())))?;
        Ok(Tls {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }
}

/// Whether `cert` (already verified against the CA by rustls) names exactly
/// `dns`: one DNS name, that one, no wildcard. A role is a name, so a
/// certificate that could match several (`*.rewire.invalid`, or the SDS's
/// name beside a host's) is no role at all.
pub fn names(cert: &CertificateDer<'_>, dns: &str) -> bool {
    let Ok(ee) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    let Ok(sn) = ServerName::try_from(dns) else {
        return false;
    };
    let mut all = ee.valid_dns_names();
    let exactly_one =
        matches!((all.next(), all.next()), (Some(n), None) if n.eq_ignore_ascii_case(dns));
    exactly_one && ee.verify_is_valid_for_subject_name(&sn).is_ok()
}
