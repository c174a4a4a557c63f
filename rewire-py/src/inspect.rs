//! Decode any librewire object (a message or a COSE_Sign1 signed object) for
//! people: every field, and whether its signature verifies against a known key.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use rewire_core::wire::{
    Decision, EnclavePolicy, HostEndorsement, Message, MigrationRequest, Ready, Signed, SignedBody,
    SmCertificate, TargetAck,
};
use rewire_core::{Error, PublicKey};

use crate::errors::to_py;
use crate::sds::hex;

fn field<'py>(d: &Bound<'py, PyDict>, k: &str, v: impl IntoPyObject<'py>) -> PyResult<()> {
    d.set_item(k, v)
}

fn signed<'py>(
    py: Python<'py>,
    b: &[u8],
    keys: &BTreeMap<[u8; 32], String>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let s = Signed::parse(b).map_err(to_py)?;
    let kid = s.kid;
    field(&d, "signer", hex(&kid.0))?;
    field(&d, "signer_name", keys.get(&kid.0).cloned())?;
    // The signature is checked against the key the object names; it is
    // trusted only if that key is one of the known keys.
    let v = match s.verify(&kid) {
        Ok(v) => v,
        Err(e) => {
            field(&d, "type", "Signed")?;
            field(&d, "signature", "invalid")?;
            field(&d, "error", e.to_string())?;
            field(&d, "trusted", false)?;
            return Ok(d);
        }
    };
    field(&d, "signature", "valid")?;
    field(&d, "trusted", keys.contains_key(&kid.0))?;
    let f = PyDict::new(py);
    let ty: &str = if let Ok(r) = MigrationRequest::from_value(v.clone()) {
        field(&f, "request_id", hex(&r.request_id))?;
        field(&f, "enclave_id", hex(&r.enclave_id))?;
        field(&f, "measurement", hex(&r.measurement))?;
        field(&f, "source", hex(&r.source.0))?;
        field(&f, "target", hex(&r.target.0))?;
        field(&f, "epoch", r.epoch)?;
        field(&f, "deadline", r.deadline)?;
        "MigrationRequest"
    } else if let Ok(e) = HostEndorsement::from_value(v.clone()) {
        field(&f, "host", hex(&e.host.0))?;
        field(
            &f,
            "sm_measurements",
            e.sm_measurements.iter().map(|m| hex(m)).collect::<Vec<_>>(),
        )?;
        field(&f, "platform", e.platform)?;
        field(&f, "atl", e.atl)?;
        field(&f, "not_before", e.not_before)?;
        field(&f, "not_after", e.not_after)?;
        "HostEndorsement"
    } else if let Ok(p) = EnclavePolicy::from_value(v.clone()) {
        field(&f, "enclave_id", hex(&p.enclave_id))?;
        field(&f, "measurement", hex(&p.measurement))?;
        field(&f, "platform", p.platform)?;
        field(&f, "min_atl", p.min_atl)?;
        "EnclavePolicy"
    } else if let Ok(c) = SmCertificate::from_value(v.clone()) {
        field(&f, "device", hex(&c.device.0))?;
        field(&f, "sm_measurement", hex(&c.sm_measurement))?;
        field(&f, "sm_key", hex(&c.sm_key.0))?;
        "SmCertificate"
    } else if let Ok(r) = Ready::from_value(v.clone()) {
        field(&f, "request_id", hex(&r.request_id))?;
        field(&f, "enclave_id", hex(&r.enclave_id))?;
        field(&f, "epoch", r.epoch)?;
        field(&f, "target", hex(&r.target.0))?;
        field(&f, "measurement", hex(&r.measurement))?;
        field(&f, "report_data", hex(&r.report_data))?;
        field(&f, "framework_evidence_len", r.framework_evidence.len())?;
        "Ready"
    } else if let Ok(x) = Decision::from_value(v.clone()) {
        field(&f, "kind", format!("{:?}", x.kind))?;
        field(&f, "request_id", hex(&x.request_id))?;
        field(&f, "enclave_id", hex(&x.enclave_id))?;
        field(&f, "epoch", x.epoch)?;
        field(&f, "source", hex(&x.source.0))?;
        field(&f, "target", hex(&x.target.0))?;
        "Decision"
    } else if let Ok(a) = TargetAck::from_value(v) {
        field(&f, "kind", format!("{:?}", a.kind))?;
        field(&f, "request_id", hex(&a.request_id))?;
        field(&f, "enclave_id", hex(&a.enclave_id))?;
        field(&f, "epoch", a.epoch)?;
        field(&f, "host", hex(&a.host.0))?;
        "TargetAck"
    } else {
        "Signed"
    };
    field(&d, "type", ty)?;
    field(&d, "fields", f)?;
    Ok(d)
}

/// Decode `data` as a librewire message or signed object. `known_keys` maps
/// trusted public keys (32 bytes) to names. Returns a dict with "type",
/// "fields", and for signed objects "signer", "signer_name", "signature"
/// ("valid"/"invalid") and "trusted"; messages carrying signed objects list
/// them under "signed". Raises DecodeError if it is neither.
#[pyfunction]
#[pyo3(signature = (data, known_keys = None))]
pub fn inspect<'py>(
    py: Python<'py>,
    data: &[u8],
    known_keys: Option<BTreeMap<Vec<u8>, String>>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut keys = BTreeMap::new();
    for (k, n) in known_keys.unwrap_or_default() {
        let k: [u8; 32] = k
            .as_slice()
            .try_into()
            .map_err(|_| to_py(Error::InvalidArgument))?;
        keys.insert(k, n);
    }
    let msg = match Message::decode(data) {
        Ok(m) => m,
        Err(msg_err) => {
            return match signed(py, data, &keys) {
                Ok(d) => Ok(d),
                // Report the closer failure: a COSE decode error if it looked signed.
                Err(e) => Err(if Signed::parse(data).is_err() {
                    to_py(msg_err)
                } else {
                    e
                }),
            };
        }
    };
    let d = PyDict::new(py);
    let f = PyDict::new(py);
    let mut inner: Vec<(&str, Vec<u8>)> = Vec::new();
    let ty = match msg {
        Message::Order(o) => {
            inner.push(("request", o.request));
            inner.push(("source_endorsement", o.source_endorsement));
            inner.push(("target_endorsement", o.target_endorsement));
            "Order"
        }
        Message::Query { enclave_id } => {
            field(&f, "enclave_id", hex(&enclave_id))?;
            "Query"
        }
        Message::Offer(o) => {
            field(&f, "lengths", o.lengths.to_vec())?;
            inner.push(("request", o.order.request));
            inner.push(("policy", o.policy));
            inner.push(("source_certificate", o.source_certificate));
            "Offer"
        }
        Message::Accept {
            request_id,
            target_certificate,
        } => {
            field(&f, "request_id", hex(&request_id))?;
            inner.push(("target_certificate", target_certificate));
            "Accept"
        }
        Message::Refuse { request_id, code } => {
            field(&f, "request_id", hex(&request_id))?;
            field(&f, "code", code)?;
            "Refuse"
        }
        Message::Chunk {
            section,
            offset,
            data,
        } => {
            field(&f, "section", format!("{section:?}"))?;
            field(&f, "offset", offset)?;
            field(&f, "len", data.len())?;
            "Chunk"
        }
        Message::End => "End",
        Message::Ready(b) => {
            inner.push(("ready", b));
            "ReadyMessage"
        }
        Message::Release(b) => {
            inner.push(("decision", b));
            "Release"
        }
        Message::Abort(b) => {
            inner.push(("decision", b));
            "Abort"
        }
        Message::Active(b) => {
            inner.push(("ack", b));
            "Active"
        }
        Message::Dropped(b) => {
            inner.push(("ack", b));
            "Dropped"
        }
    };
    field(&d, "type", ty)?;
    field(&d, "fields", f)?;
    let s = PyDict::new(py);
    for (name, b) in inner {
        let entry = match signed(py, &b, &keys) {
            Ok(x) => x,
            Err(e) => {
                let x = PyDict::new(py);
                x.set_item("type", "invalid")?;
                x.set_item("error", e.value(py).str()?)?;
                x
            }
        };
        s.set_item(name, entry)?;
    }
    field(&d, "signed", s)?;
    let _ = PublicKey([0; 32]);
    Ok(d)
}
