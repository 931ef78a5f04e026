//! Full-state exchange ("pull-push"): the join handshake and periodic anti-entropy.
//!
//! The initiator sends its whole member table over a stream; the receiver answers with its own
//! table and both merge what they receive. In a merge, a remote Dead counts as Suspect (the
//! local node runs its own suspicion rather than trusting a second-hand death), a remote Left
//! as Left, Alive and Suspect as themselves. The periodic exchange goes to one random alive
//! member every `pullpush_interval`, scaled up above 32 members.

/// Marks a [`Transmit`](crate::Transmit) as a full-state exchange, so that the embedder can
/// bundle its own state (the KV store) into the same stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullPush {
    /// The first message of an exchange; `join` is true for joins, seed re-joins and
    /// reconnection attempts, false for periodic anti-entropy.
    Request {
        /// Whether this exchange is a join.
        join: bool,
    },
    /// The answer to a request.
    Reply,
}
