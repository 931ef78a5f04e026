//! The LZW codec against Go's `compress/lzw` (LSB, literal width 8), byte for byte.

use rumour_memberlist::{Error, lzw_compress, lzw_decompress};

use crate::support::{lzw_cases, unhex};

#[test]
fn compression_matches_go_byte_for_byte_across_width_steps_and_table_resets() {
    let cases = lzw_cases();
    assert!(cases.len() >= 6);
    for case in cases {
        let input = unhex(&case.input);
        let expected = unhex(&case.output);
        assert_eq!(lzw_compress(&input), expected, "case {}", case.name);
        assert_eq!(
            lzw_decompress(&expected, usize::MAX).as_deref(),
            Ok(input.as_slice()),
            "case {}",
            case.name
        );
    }
}

#[test]
fn decompression_stops_at_the_limit_instead_of_growing() {
    let zeros = vec![0u8; 100_000];
    let compressed = lzw_compress(&zeros);
    assert_eq!(
        lzw_decompress(&compressed, 99_999),
        Err(Error::TooLarge {
            what: "decompressed payload",
            limit: 99_999
        })
    );
    assert_eq!(
        lzw_decompress(&compressed, 100_000).map(|v| v.len()),
        Ok(100_000)
    );
}

#[test]
fn data_without_an_end_code_is_refused() {
    let compressed = lzw_compress(b"hello, hello, hello");
    assert_eq!(
        lzw_decompress(&compressed[..compressed.len() - 2], 1 << 20),
        Err(Error::Lzw)
    );
}
