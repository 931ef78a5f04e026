//! A small Rust lexer: just enough to tell code from comments and literals, and test items from
//! the rest.
//!
//! [`scan`] blanks every comment and the contents of every string and character literal with
//! spaces, keeping newlines and byte offsets, so the rules match code only and report the lines of
//! the original file. [`blank_test_items`] then blanks each item annotated `#[cfg(test)]` (a test
//! module, a test-only helper, a test-only `use`), and nothing after it.

/// A source file seen by the lexer.
#[derive(Debug)]
pub struct Scanned {
    /// The source with comments and literal contents replaced by spaces: same length, same lines.
    pub code: String,
    /// The text of the doc comments (`///`, `//!`, `/** */`, `/*! */`), one line each: where
    /// doctests live.
    pub docs: String,
}

fn is_ident(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80
}

/// Replaces `text[from..to]` in `out` by spaces, keeping newlines.
fn blank(out: &mut [u8], from: usize, to: usize) {
    let to = to.min(out.len());
    for byte in &mut out[from.min(to)..to] {
        if *byte != b'\n' {
            *byte = b' ';
        }
    }
}

/// The end of a quoted literal whose contents start at `from`: the index of the closing `quote`,
/// honouring backslash escapes.
fn literal_end(bytes: &[u8], from: usize, quote: u8) -> usize {
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Blanks comments and the contents of string, byte-string, raw-string and char literals.
pub fn scan(text: &str) -> Scanned {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let mut docs = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"//") {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |n| i + n);
            let is_doc = (rest.starts_with(b"///") && !rest.starts_with(b"////"))
                || rest.starts_with(b"//!");
            if is_doc {
                docs.push_str(&text[(i + 3).min(end)..end]);
                docs.push('\n');
            }
            blank(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let is_doc = (rest.starts_with(b"/**") && !rest.starts_with(b"/**/"))
                || rest.starts_with(b"/*!");
            let mut depth = 0usize;
            let mut j = i;
            while j < bytes.len() {
                if bytes[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if bytes[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            let end = j.min(bytes.len());
            if is_doc {
                docs.push_str(&text[(i + 3).min(end)..end.saturating_sub(2).max(i + 3).min(end)]);
                docs.push('\n');
            }
            blank(&mut out, i, end);
            i = end;
        } else if bytes[i] == b'"' {
            let end = literal_end(bytes, i + 1, b'"');
            blank(&mut out, i + 1, end);
            i = end + 1;
        } else if bytes[i] == b'\'' {
            // A char literal (`'x'`, `'\n'`, `'\u{1F600}'`) or a lifetime / label (`'a`).
            if rest.get(1) == Some(&b'\\') {
                let end = literal_end(bytes, i + 1, b'\'');
                blank(&mut out, i + 1, end);
                i = end + 1;
            } else {
                let width = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                if bytes.get(i + 1 + width) == Some(&b'\'') {
                    blank(&mut out, i + 1, i + 1 + width);
                    i += 2 + width;
                } else {
                    i += 1;
                }
            }
        } else if is_ident(bytes[i]) && !bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && is_ident(bytes[i]) {
                i += 1;
            }
            // Raw strings: `r"…"`, `r#"…"#`, `br##"…"##`, `cr"…"` (not raw identifiers `r#ty`).
            if matches!(&text[start..i], "r" | "br" | "cr") {
                let hashes = bytes[i..].iter().take_while(|&&b| b == b'#').count();
                if bytes.get(i + hashes) == Some(&b'"') {
                    let open = i + hashes + 1;
                    let mut closer = vec![b'"'];
                    closer.extend(std::iter::repeat_n(b'#', hashes));
                    let end = bytes[open..]
                        .windows(closer.len())
                        .position(|w| w == closer.as_slice())
                        .map_or(bytes.len(), |n| open + n);
                    blank(&mut out, open, end);
                    i = (end + closer.len()).min(bytes.len());
                }
            }
        } else if bytes[i].is_ascii_digit() {
            // Numbers, with their suffixes (`1u8`, `0x1f`): never the start of a literal.
            while i < bytes.len() && is_ident(bytes[i]) {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    Scanned {
        code: String::from_utf8(out).expect("only ASCII bytes were replaced, by ASCII spaces"),
        docs,
    }
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The byte offsets where `needle` occurs in `code` as whole words: not preceded by an identifier
/// character, and not followed by one when the needle ends in one (`tokio` does not match
/// `tokio_util`, `HashMap` does not match `FxHashMap`, `todo!` matches `todo!(`).
pub fn find_word(code: &str, needle: &str) -> Vec<usize> {
    let bytes = code.as_bytes();
    let ends_in_ident = needle.as_bytes().last().is_some_and(|&b| is_ident(b));
    let starts_with_ident = needle.as_bytes().first().is_some_and(|&b| is_ident(b));
    code.match_indices(needle)
        .map(|(at, _)| at)
        .filter(|&at| !(starts_with_ident && at > 0 && is_ident(bytes[at - 1])))
        .filter(|&at| {
            !(ends_in_ident && bytes.get(at + needle.len()).is_some_and(|&b| is_ident(b)))
        })
        .collect()
}

/// Skips ASCII whitespace from `i`.
fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The index just past the bracket that closes the one at `open` (`(`, `[` or `{`), counting all
/// three kinds; `code` must be scanned code.
fn close_of(bytes: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    for (j, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
    }
    bytes.len()
}

/// If an outer attribute starts at `i` (`#[…]`), the index just past it.
fn attribute_at(bytes: &[u8], i: usize) -> Option<usize> {
    if bytes.get(i) != Some(&b'#') {
        return None;
    }
    let open = skip_ws(bytes, i + 1);
    (bytes.get(open) == Some(&b'[')).then(|| close_of(bytes, open))
}

/// Whether the attribute text is exactly `#[cfg(test)]` (whitespace aside).
fn is_cfg_test(attribute: &str) -> bool {
    let compact: String = attribute.split_whitespace().collect();
    compact == "#[cfg(test)]"
}

/// The end of the item (or statement) that starts at `i`, after its attributes: just past its
/// `;` or its body's closing `}`, or just before an unmatched `}` (the end of the enclosing block).
fn item_end(bytes: &[u8], i: usize) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    while j < bytes.len() {
        match bytes[j] {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth = depth.saturating_sub(1),
            b'{' if depth == 0 => return close_of(bytes, j),
            b'{' => depth += 1,
            b'}' if depth == 0 => return j,
            b'}' => depth -= 1,
            b';' if depth == 0 => return j + 1,
            _ => {}
        }
        j += 1;
    }
    bytes.len()
}

/// Scanned code with every `#[cfg(test)]` item blanked: `mod tests { … }`, `mod tests;`,
/// `#[cfg(test)] fn helper() { … }`, `#[cfg(test)] use …;`. Code after such an item is kept. A
/// file with the inner attribute `#![cfg(test)]` is all test code and comes back blank.
pub fn blank_test_items(code: &str) -> String {
    let bytes = code.as_bytes();
    let mut out = bytes.to_vec();
    for at in find_word(code, "cfg") {
        // Walk back from `cfg` to the attribute's `#`: `#[cfg(test)]` or `#![cfg(test)]`.
        let before = code[..at].trim_end();
        let Some(before) = before.strip_suffix('[') else {
            continue;
        };
        let before = before.trim_end();
        let (inner, hash) = if let Some(b) = before.strip_suffix('!') {
            (true, b.trim_end().len().checked_sub(1))
        } else {
            (false, before.len().checked_sub(1))
        };
        let Some(hash) = hash.filter(|&h| bytes[h] == b'#') else {
            continue;
        };
        let open = code[hash..].find('[').map_or(hash, |n| hash + n);
        let end = close_of(bytes, open);
        let attribute = format!("#{}", &code[open..end]);
        if !is_cfg_test(&attribute) {
            continue;
        }
        if inner {
            blank(&mut out, 0, bytes.len());
            break;
        }
        // Skip the item's other attributes, then the item.
        let mut start = skip_ws(bytes, end);
        while let Some(next) = attribute_at(bytes, start) {
            start = skip_ws(bytes, next);
        }
        blank(&mut out, hash, item_end(bytes, start));
    }
    String::from_utf8(out).expect("only ASCII bytes were replaced, by ASCII spaces")
}

/// A `mod NAME;` declaration: a module whose code lives in another file.
#[derive(Debug, PartialEq, Eq)]
pub struct ModDecl {
    /// The module's name.
    pub name: String,
    /// The `#[path = "…"]` attribute's value, if any.
    pub path: Option<String>,
    /// Whether the declaration is annotated `#[cfg(test)]`.
    pub cfg_test: bool,
}

/// The `mod NAME;` declarations of a file, with their `#[path]` and `#[cfg(test)]` attributes.
/// `source` is the original text (for the path literal), `code` its scanned form.
pub fn mod_decls(source: &str, code: &str) -> Vec<ModDecl> {
    let bytes = code.as_bytes();
    let mut decls = Vec::new();
    for at in find_word(code, "mod") {
        let name_at = skip_ws(bytes, at + 3);
        let name_end = name_at
            + bytes[name_at..]
                .iter()
                .take_while(|&&b| is_ident(b))
                .count();
        if name_end == name_at || bytes.get(skip_ws(bytes, name_end)) != Some(&b';') {
            continue;
        }
        // Walk back over a visibility (`pub`, `pub(crate)`) and the attributes.
        let mut head = code[..at].trim_end();
        if head.ends_with(')')
            && let Some(open) = head.rfind('(')
            && head[..open].trim_end().ends_with("pub")
        {
            head = head[..open].trim_end();
        }
        if let Some(h) = head.strip_suffix("pub")
            && !h.as_bytes().last().is_some_and(|&b| is_ident(b))
        {
            head = h.trim_end();
        }
        let mut path = None;
        let mut cfg_test = false;
        while head.ends_with(']') {
            let close = head.len() - 1;
            let mut depth = 0usize;
            let Some(open) = (0..=close).rev().find(|&j| {
                match bytes[j] {
                    b']' | b')' | b'}' => depth += 1,
                    b'[' | b'(' | b'{' => depth -= 1,
                    _ => {}
                }
                depth == 0
            }) else {
                break;
            };
            let Some(hash) = head[..open].trim_end().strip_suffix('#').map(str::len) else {
                break;
            };
            let attribute = &code[hash..=close];
            cfg_test |= is_cfg_test(attribute);
            let compact: String = attribute.split_whitespace().collect();
            if compact.starts_with("#[path=")
                && let (Some(q1), Some(q2)) = (attribute.find('"'), attribute.rfind('"'))
            {
                path = Some(source[hash + q1 + 1..hash + q2].to_string());
            }
            head = head[..hash].trim_end();
        }
        decls.push(ModDecl {
            name: code[name_at..name_end].to_string(),
            path,
            cfg_test,
        });
    }
    decls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_literals_are_blanked_and_lines_kept() {
        let text =
            "let a = \"Instant::now\"; // Instant::now\n/* x /* nested */ Instant::now */ b\n";
        let code = scan(text).code;
        assert_eq!(code.len(), text.len());
        assert_eq!(code.lines().count(), text.lines().count());
        assert!(find_word(&code, "Instant::now").is_empty());
        assert!(code.contains("let a") && code.ends_with(" b\n"));
    }

    #[test]
    fn doc_comments_are_blanked_but_kept_as_docs() {
        let scanned = scan("/// uses `Instant::now`\n//! and rand_chacha::\nfn f() {}\n");
        assert!(find_word(&scanned.code, "Instant::now").is_empty());
        assert!(scanned.docs.contains("rand_chacha::"));
    }

    #[test]
    fn raw_strings_chars_and_lifetimes_are_told_apart() {
        let text = "r#\"a \" { HashMap\"# '{' '\\'' b'}' '\"' fn f<'a>(x: &'a str) { HashSet }";
        let code = scan(text).code;
        assert!(find_word(&code, "HashMap").is_empty());
        assert_eq!(find_word(&code, "HashSet").len(), 1);
        assert!(code.contains("<'a>(x: &'a str)"));
        assert_eq!(code.matches('{').count(), 1);
    }

    #[test]
    fn raw_identifiers_are_not_raw_strings() {
        let code = scan("let r#type = 1; \"x\"; HashMap").code;
        assert_eq!(find_word(&code, "HashMap").len(), 1);
    }

    #[test]
    fn words_match_on_identifier_boundaries() {
        assert_eq!(
            find_word("tokio::spawn tokio_util FxHashMap", "tokio").len(),
            1
        );
        assert!(find_word("FxHashMap", "HashMap").is_empty());
        assert_eq!(find_word("todo!()", "todo!").len(), 1);
    }

    #[test]
    fn a_test_module_is_blanked_and_code_after_it_is_kept() {
        let code = "fn a() {}\n#[cfg(test)]\nmod tests { fn t() { x('}'); } }\nfn b() { c() }\n";
        let kept = blank_test_items(&scan(code).code);
        assert!(!kept.contains("fn t"));
        assert!(kept.contains("fn a") && kept.contains("fn b() { c() }"));
        assert_eq!(kept.lines().count(), code.lines().count());
    }

    #[test]
    fn a_test_only_helper_hides_only_itself() {
        let code = "impl A {\n    #[cfg(test)]\n    #[must_use]\n    pub(crate) fn len(&self) -> usize { self.0.len() }\n}\nfn after() { Instant::now(); }\n";
        let kept = blank_test_items(&scan(code).code);
        assert!(!kept.contains("fn len"));
        assert!(kept.contains("impl A {") && kept.contains('}'));
        assert_eq!(find_word(&kept, "Instant::now").len(), 1);
    }

    #[test]
    fn test_only_uses_and_module_declarations_are_blanked() {
        let code = "#[cfg(test)]\nuse std::collections::HashMap;\n#[cfg(test)]\nmod tests;\nuse x::HashSet;";
        let kept = blank_test_items(&scan(code).code);
        assert!(find_word(&kept, "HashMap").is_empty());
        assert!(find_word(&kept, "tests").is_empty());
        assert_eq!(find_word(&kept, "HashSet").len(), 1);
    }

    #[test]
    fn other_cfgs_are_not_test_items() {
        let code = "#[cfg(not(test))]\nfn a() { HashMap }\n#[cfg(feature = \"x\")]\nfn b() {}";
        let kept = blank_test_items(&scan(code).code);
        assert_eq!(find_word(&kept, "HashMap").len(), 1);
    }

    #[test]
    fn an_inner_cfg_test_makes_the_whole_file_test_code() {
        let kept = blank_test_items(&scan("#![cfg(test)]\nfn a() { HashMap }\n").code);
        assert!(kept.trim().is_empty());
    }

    #[test]
    fn module_declarations_carry_their_path_and_cfg() {
        let source = "mod a;\n#[cfg(test)]\n#[path = \"m/tests.rs\"]\nmod tests;\npub(crate) mod b;\nmod inline {}\n";
        let decls = mod_decls(source, &scan(source).code);
        assert_eq!(
            decls,
            vec![
                ModDecl {
                    name: "a".into(),
                    path: None,
                    cfg_test: false
                },
                ModDecl {
                    name: "tests".into(),
                    path: Some("m/tests.rs".into()),
                    cfg_test: true
                },
                ModDecl {
                    name: "b".into(),
                    path: None,
                    cfg_test: false
                },
            ]
        );
    }
}
