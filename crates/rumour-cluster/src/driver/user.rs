//! The user-message side of a [`Cluster`]: sending, broadcasting and receiving the
//! application's own bytes (memberlist's `SendReliable`, `SendBestEffort`, `NotifyMsg`,
//! `GetBroadcasts`).

use bytes::Bytes;
use tokio::sync::broadcast::{self, error::RecvError};

use super::Cluster;
use crate::{Delivery, Error, NodeEvent};

/// A user message as a [`UserMessages`] stream yields it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserMessage {
    /// The sender's name (a broadcast's origin), as the message states it.
    pub from: String,
    /// The application's bytes.
    pub bytes: Bytes,
    /// Whether it was a broadcast.
    pub broadcast: bool,
}

/// The user messages a node receives, from the moment [`Cluster::user_messages`] was called.
///
/// It reads the node's event channel (bounded by [`Builder::event_capacity`](super::Builder)):
/// a reader that falls behind loses the oldest events, and the user messages among them are
/// counted in [`UserMessages::lagged`] (as events; other kinds included). It never slows the
/// node.
#[derive(Debug)]
pub struct UserMessages {
    events: broadcast::Receiver<NodeEvent>,
    lagged: u64,
}

impl UserMessages {
    /// The next user message, or `None` once the node has stopped.
    pub async fn recv(&mut self) -> Option<UserMessage> {
        loop {
            match self.events.recv().await {
                Ok(NodeEvent::UserMessage {
                    from,
                    bytes,
                    broadcast,
                }) => {
                    return Some(UserMessage {
                        from,
                        bytes,
                        broadcast,
                    });
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => self.lagged += n,
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Events (user messages among them) this reader lost by falling behind.
    #[must_use]
    pub fn lagged(&self) -> u64 {
        self.lagged
    }
}

impl Cluster {
    /// Sends `bytes` to a member (its name or address) on a stream, in order with this node's
    /// other streams to it (memberlist's `SendReliable`). Only live members this node has
    /// confirmed are sent to; the payload may be up to the frame's message limit (minus a few
    /// bytes of envelope).
    ///
    /// # Errors
    /// The node has stopped, [`Error::UnknownMember`], or [`Error::UserMessageTooLarge`].
    pub async fn send_reliable(&self, member: &str, bytes: impl Into<Bytes>) -> Result<(), Error> {
        self.send_user(member, bytes.into(), Delivery::Stream).await
    }

    /// Sends `bytes` to a member (its name or address) in one datagram, which may be lost
    /// (memberlist's `SendBestEffort`). The payload must fit the packet budget with the
    /// envelope (about 1,350 bytes on the LAN profile).
    ///
    /// # Errors
    /// The node has stopped, [`Error::UnknownMember`], or [`Error::UserMessageTooLarge`].
    pub async fn send_best_effort(
        &self,
        member: &str,
        bytes: impl Into<Bytes>,
    ) -> Result<(), Error> {
        self.send_user(member, bytes.into(), Delivery::Datagram)
            .await
    }

    /// Broadcasts `bytes` to every member: piggybacked on the gossip ticks, forwarded by every
    /// node that receives it, reported once by each (see [`Node::broadcast_user`](crate::Node)).
    ///
    /// # Errors
    /// The node has stopped, or [`Error::UserMessageTooLarge`] (one datagram is the limit).
    pub async fn broadcast(&self, bytes: impl Into<Bytes>) -> Result<(), Error> {
        let bytes = bytes.into();
        self.with_node(move |node, _| node.broadcast_user(&bytes))
            .await?
    }

    /// A stream of the user messages this node receives from now on.
    pub fn user_messages(&self) -> UserMessages {
        UserMessages {
            events: self.events(),
            lagged: 0,
        }
    }

    async fn send_user(&self, member: &str, bytes: Bytes, delivery: Delivery) -> Result<(), Error> {
        let member = member.to_string();
        self.with_node(move |node, now| node.send_user_message(now, &member, &bytes, delivery))
            .await?
    }
}
