//! Protocol version negotiation (`verifyProtocol` and the alive check in memberlist's
//! `state.go`): every member announces the range of protocol and delegate versions it
//! understands and the one it speaks; a push/pull is merged only if every member speaks a
//! version every alive member understands.

use crate::Error;
use crate::message::{NodeState, PushNodeState, Vsn};

impl Vsn {
    /// Whether an alive message with these versions is usable: memberlist ignores alive
    /// messages whose protocol min or max is 0 or whose min exceeds its max.
    pub fn is_valid(&self) -> bool {
        self.protocol_min != 0 && self.protocol_max != 0 && self.protocol_min <= self.protocol_max
    }
}

/// memberlist's `verifyProtocol`, run before a push/pull is merged: the ranges understood by
/// every *alive* member, local and remote, must contain the version spoken by *every* member
/// listed (alive or not, as in memberlist). `local` is this node's member table in push/pull
/// form (the one it sends), `remote` the peer's.
pub fn verify_protocol(local: &[PushNodeState], remote: &[PushNodeState]) -> Result<(), Error> {
    let (mut max_pmin, mut min_pmax) = (0u8, u8::MAX);
    let (mut max_dmin, mut min_dmax) = (0u8, u8::MAX);
    for node in remote
        .iter()
        .chain(local)
        .filter(|n| n.state == NodeState::Alive)
    {
        max_pmin = max_pmin.max(node.vsn.protocol_min);
        min_pmax = min_pmax.min(node.vsn.protocol_max);
        max_dmin = max_dmin.max(node.vsn.delegate_min);
        min_dmax = min_dmax.min(node.vsn.delegate_max);
    }
    for node in remote.iter().chain(local) {
        let checks = [
            ("protocol", node.vsn.protocol_cur, max_pmin, min_pmax),
            (
                "delegate protocol",
                node.vsn.delegate_cur,
                max_dmin,
                min_dmax,
            ),
        ];
        for (what, version, min, max) in checks {
            if version < min || version > max {
                return Err(Error::IncompatibleVersion {
                    node: node.name.clone(),
                    what,
                    version,
                    min,
                    max,
                });
            }
        }
    }
    Ok(())
}
