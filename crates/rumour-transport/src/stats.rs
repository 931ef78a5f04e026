//! Transport counters: packets and bytes in and out, drops by reason.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// A snapshot of a transport's counters, from [`Transport::stats`](crate::Transport::stats).
        /// Fields that do not apply to a transport stay zero (for example `dropped_loss` on a
        /// real network).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Stats {
            $($(#[$doc])* pub $name: u64,)*
        }

        /// The live, atomic counters behind [`Stats`].
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub(crate) $name: AtomicU64,)*
        }

        impl Counters {
            pub(crate) fn snapshot(&self) -> Stats {
                Stats { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Datagrams handed to the network.
    datagrams_out,
    /// Datagrams handed to [`recv`](crate::Transport::recv)'s queue.
    datagrams_in,
    /// Reliable messages written to the network.
    reliable_out,
    /// Reliable messages handed to [`recv`](crate::Transport::recv)'s queue.
    reliable_in,
    /// Payload bytes sent (datagrams and reliable messages, without transport envelopes).
    bytes_out,
    /// Payload bytes received: of datagrams read, of reliable messages queued.
    bytes_in,
    /// Outbound connections opened.
    connections_opened,
    /// Inbound connections accepted.
    connections_accepted,
    /// Inbound connections refused because `max_inbound_streams` were already open and none
    /// of them idle.
    streams_refused,
    /// Inbound connections refused because `max_streams_per_ip` were already open from the
    /// same source IP and none of them idle.
    streams_refused_per_ip,
    /// Idle inbound connections closed to make room for a new one past a limit.
    streams_evicted,
    /// Inbound connections that found every place busy and waited for one.
    streams_waited,
    /// Datagrams and inbound connections refused because their source is outside
    /// `allowed_cidrs` (nothing of them was read).
    refused_source,
    /// Inbound input rejected because a length was over a limit (read no further).
    dropped_over_limit,
    /// Inbound messages abandoned because the read deadline passed.
    dropped_timeout,
    /// Inbound reliable messages dropped because the receive queue held `recv_queue`
    /// messages. (Datagrams do not pass through it: they wait in the UDP socket's buffer.)
    dropped_queue_full,
    /// Inbound reliable messages dropped because the receive queue held `recv_queue_bytes`
    /// bytes.
    dropped_queue_bytes,
    /// Inbound connections dropped because a stream message's frame header carried another
    /// cluster label, or none when one is required (the body was not read).
    dropped_label,
    /// Inbound connections dropped for a malformed preamble or envelope.
    dropped_malformed,
    /// Inbound connections dropped because the address their preamble advertises is not on
    /// the connection's own IP (`verify_stream_source`): a stream cannot name a third party.
    dropped_source_mismatch,
    /// Inbound messages lost to a socket error or a connection closed mid-message.
    dropped_io,
    /// Datagrams lost to the in-memory network's simulated loss.
    dropped_loss,
    /// Messages dropped by an in-memory network partition.
    dropped_partition,
    /// Datagrams sent to an address where no in-memory endpoint is bound.
    dropped_no_route,
    /// Sends that failed (the caller got an error, or a queued datagram could not be written).
    send_errors,
    /// Sends refused because `max_outbound_peers` peers already had a writer (also counted in
    /// `send_errors`).
    sends_refused_peers,
    /// Sends refused because `send_queue_bytes` bytes were already waiting to be written (also
    /// counted in `send_errors`).
    sends_refused_bytes,
}

impl Stats {
    /// All inbound input dropped, whatever the reason (refused streams and sources not
    /// included).
    pub fn dropped_total(&self) -> u64 {
        self.dropped_over_limit
            + self.dropped_timeout
            + self.dropped_queue_full
            + self.dropped_queue_bytes
            + self.dropped_label
            + self.dropped_malformed
            + self.dropped_source_mismatch
            + self.dropped_io
            + self.dropped_loss
            + self.dropped_partition
            + self.dropped_no_route
    }
}

/// Adds `by` to a counter.
pub(crate) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// Adds one to a counter.
pub(crate) fn incr(counter: &AtomicU64) {
    bump(counter, 1);
}

/// `Ok` while an endpoint is open, [`TransportError::Shutdown`] once `closed` is set.
pub(crate) fn check_open(
    closed: &tokio::sync::watch::Sender<bool>,
) -> Result<(), crate::TransportError> {
    if *closed.borrow() {
        Err(crate::TransportError::Shutdown)
    } else {
        Ok(())
    }
}

/// Refuses (and counts as a send error) an outgoing message of `len` bytes over `limit`.
pub(crate) fn check_len(
    send_errors: &AtomicU64,
    what: &'static str,
    len: usize,
    limit: usize,
) -> Result<(), crate::TransportError> {
    if len > limit {
        incr(send_errors);
        return Err(crate::TransportError::OverLimit { what, len, limit });
    }
    Ok(())
}
