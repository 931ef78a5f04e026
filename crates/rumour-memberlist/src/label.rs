//! The cluster label header, `[244][len u8][label]`, outermost on packets and streams.
//!
//! memberlist 0.2.2 (Debian's, the one the test vectors come from) has no labels: it treats 244
//! as an unknown message type. Labels arrived in 0.3.0; this module follows that source's
//! `label.go` and is tested here only against its documented layout, not against Go bytes.

use crate::Error;

/// The type byte of a label header (`hasLabelMsg`).
pub const LABEL_TYPE: u8 = 244;
/// Longest label (`LabelMaxSize`).
pub const MAX_LABEL: usize = 255;

/// Prepends the label header; an empty label writes nothing (memberlist's unlabeled form).
pub fn add_label(out: &mut Vec<u8>, label: &[u8]) -> Result<(), Error> {
    if label.is_empty() {
        return Ok(());
    }
    let len = u8::try_from(label.len()).map_err(|_| Error::TooLarge {
        what: "label",
        limit: MAX_LABEL,
    })?;
    out.push(LABEL_TYPE);
    out.push(len);
    out.extend_from_slice(label);
    Ok(())
}

/// Splits a label header off `buf`: `(label, rest)`, the label empty when there is no header.
/// A header with an empty label, or one running past the input, is an error.
pub fn strip_label(buf: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    match buf {
        [LABEL_TYPE, len, rest @ ..] => {
            let len = usize::from(*len);
            if len == 0 || rest.len() < len {
                return Err(Error::Label);
            }
            Ok(rest.split_at(len))
        }
        [LABEL_TYPE] => Err(Error::Label),
        _ => Ok((&[], buf)),
    }
}
