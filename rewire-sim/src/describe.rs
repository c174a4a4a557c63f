//! Human-readable names of monitor events, enclave states and ledger events
//! (the demo's timeline, Python's `take_events`).

use rewire_core::{EnclaveState, Event, LedgerEvent};

/// A stable short name for an event.
pub fn event_name(e: Event) -> &'static str {
    match e {
        Event::Validated => "validated",
        Event::Frozen => "frozen",
        Event::ChannelUp => "channel_up",
        Event::Offered => "offered",
        Event::OfferAccepted => "offer_accepted",
        Event::TargetVerified => "target_verified",
        Event::StreamDone => "stream_done",
        Event::PendingReady => "pending_ready",
        Event::Committed => "committed",
        Event::Activated => "activated",
        Event::Aborted(_) => "aborted",
        Event::Dropped => "dropped",
    }
}

/// What an event means, in one line.
pub fn describe_event(e: Event) -> String {
    use Event::*;
    match e {
        Validated => "SMS: request verified (SDS signature, names me as source, epoch, deadline, target ATL >= policy)".into(),
        Frozen => "SMS: FROZEN journaled (sealed, counter-bound), enclave paused".into(),
        ChannelUp => "SMS: TLS 1.3 handshake done (mutual raw public keys = SM keys)".into(),
        Offered => "SMS: OFFER sent (request, endorsements, policy, SM certificate, sizes)".into(),
        OfferAccepted => "SMT: OFFER verified (request names me, source evidence = TLS key, policy, ATL, epoch); RECEIVING journaled; ACCEPT sent".into(),
        TargetVerified => "SMS: target evidence verified (endorsed device, endorsed SM, = TLS key); streaming code, state, unsealed data".into(),
        StreamDone => "SMS: image sent; END with SHA-256 digests".into(),
        PendingReady => "SMT: digests + code measurement verified, sealed data re-sealed under my key; PENDING journaled; READY (signed report) sent".into(),
        Committed => "SMS: READY verified; MIGRATED journaled; source copy destroyed; RELEASE sent".into(),
        Activated => "SMT: RELEASE verified (source SM key); ACTIVE journaled; enclave runs".into(),
        Aborted(e) => format!("SMS: aborted ({e}); ABORTED journaled; enclave resumed"),
        Dropped => "SMT: incoming copy dropped".into(),
    }
}

/// A stable short name for an enclave state.
pub fn state_name(s: EnclaveState) -> &'static str {
    match s {
        EnclaveState::Running => "running",
        EnclaveState::Frozen => "frozen",
        EnclaveState::Receiving => "receiving",
        EnclaveState::Pending => "pending",
        EnclaveState::Migrated => "migrated",
        EnclaveState::Gone => "gone",
    }
}

/// What a ledger event means, in one line.
pub fn describe(e: &LedgerEvent) -> String {
    match e {
        LedgerEvent::Released { epoch, .. } => {
            format!("RELEASE received: enclave belongs to the target at epoch {epoch}")
        }
        LedgerEvent::Activated { epoch, .. } => {
            format!("ACTIVE received: migration complete at epoch {epoch}")
        }
        LedgerEvent::Aborted { epoch, .. } => {
            format!("ABORT received: enclave stays at the source, epoch {epoch}")
        }
        LedgerEvent::Dropped { .. } => "DROPPED received: target's pending copy is gone".into(),
    }
}
