//! The cluster label: a short name every frame carries so that two clusters sharing a network
//! (or a misdirected join) never mix their members.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::TransportError;

/// A cluster label: 1 to 255 bytes of UTF-8.
///
/// ```
/// use rumour_transport::Label;
/// let label = Label::new("prod-eu")?;
/// assert_eq!(label.as_str(), "prod-eu");
/// assert!(Label::new("").is_err());
/// assert!(Label::new("x".repeat(256)).is_err());
/// # Ok::<(), rumour_transport::TransportError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label(Arc<str>);

impl Label {
    /// The longest label, in bytes: its length travels in one byte.
    pub const MAX_LEN: usize = 255;

    /// Checks that `label` is 1 to [`Label::MAX_LEN`] bytes long.
    pub fn new(label: impl Into<String>) -> Result<Self, TransportError> {
        let label = label.into();
        if label.is_empty() {
            return Err(TransportError::Config {
                field: "label",
                reason: "is empty",
            });
        }
        if label.len() > Self::MAX_LEN {
            return Err(TransportError::Config {
                field: "label",
                reason: "is longer than 255 bytes",
            });
        }
        Ok(Self(label.into()))
    }

    /// The label as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The label as it appears on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Label {
    type Err = TransportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for Label {
    type Error = TransportError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl TryFrom<String> for Label {
    type Error = TransportError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}
