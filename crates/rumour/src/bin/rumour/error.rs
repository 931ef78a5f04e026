//! The binary's errors: what failed, with its cause as the `source`.

use std::io;
use std::net::SocketAddr;

/// Why `rumour agent` or `rumour demo` stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tokio runtime did not start.
    #[error("cannot start the runtime")]
    Runtime(#[source] io::Error),
    /// A node did not start (its sockets, its configuration).
    #[error("cannot start node {name}")]
    Build {
        /// The node's name.
        name: String,
        /// Why.
        #[source]
        source: rumour::Error,
    },
    /// A running node stopped answering.
    #[error("node {name} stopped answering")]
    Node {
        /// The node's name.
        name: String,
        /// Why.
        #[source]
        source: rumour::Error,
    },
    /// The status page could not bind its address.
    #[error("cannot bind the status page to {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The status page's server failed.
    #[error("the status page failed")]
    Serve(#[source] io::Error),
    /// The `--keyring-file` could not be used.
    #[error("keyring file {}", path.display())]
    Keyring {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: crate::keyring_file::KeyringFileError,
    },
    /// The SIGHUP handler could not be registered.
    #[error("cannot listen for SIGHUP")]
    Signal(#[source] io::Error),
    /// The status page's task panicked.
    #[error("the status page's task ended abnormally")]
    ServeTask(#[source] tokio::task::JoinError),
}

/// `error` and its causes, outermost first, joined by `: `. A cause whose text its parent
/// already ends with (the layer crates' errors print their source too) is not repeated.
pub fn report(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let line = inner.to_string();
        if !text.ends_with(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_names_every_cause_outermost_first() {
        let error = Error::Bind {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            source: io::Error::new(io::ErrorKind::AddrInUse, "address in use"),
        };
        assert_eq!(
            report(&error),
            "cannot bind the status page to 127.0.0.1:8080: address in use"
        );
    }

    #[test]
    fn a_cause_its_parent_already_prints_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("transport: {0}")]
        struct Layer(#[source] io::Error);
        let error = Error::Serve(io::Error::other(Layer(io::Error::other("disk full"))));
        assert_eq!(
            report(&error),
            "the status page failed: transport: disk full"
        );
    }
}
