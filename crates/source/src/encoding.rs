//! `logencoding`: turning a line's bytes into text without ever failing.
//!
//! Lines are split on the `\n` byte before decoding, so only encodings in which that byte always
//! means a line feed are accepted (UTF-8, Latin-1, the other single-byte code pages, EUC/Shift_JIS,
//! GBK…); UTF-16 and ISO-2022-JP are refused when the source is built. Decoding is lossy in the
//! Python `errors="replace"` sense: an invalid sequence becomes U+FFFD and the line is still
//! delivered (with [`Line::decode_errors`](crate::Line::decode_errors) set).

use std::fmt;

use crate::SourceError;

/// The character encoding of a log file (`logencoding`).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub enum LogEncoding {
    /// UTF-8 (the default, also what `auto` means here).
    #[default]
    Utf8,
    /// ISO-8859-1 exactly as Python's `latin-1`: each byte is the code point of the same value.
    /// (Not WHATWG's `windows-1252` reading of the label.)
    Latin1,
    /// Any other ASCII-compatible encoding known to `encoding_rs`.
    Other(&'static encoding_rs::Encoding),
}

impl fmt::Debug for LogEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl LogEncoding {
    /// Parses a `logencoding` value: `auto`, `utf-8`, `latin-1` and the labels of the
    /// WHATWG Encoding Standard (`cp1251`, `koi8-r`, `shift_jis`, `gbk`, `euc-kr`…).
    ///
    /// `auto` means UTF-8: fail2ban takes the locale's encoding, which is UTF-8 on current systems.
    pub fn parse(label: &str) -> Result<Self, SourceError> {
        let l = label.trim().to_ascii_lowercase().replace('_', "-");
        match l.as_str() {
            "" | "auto" | "utf-8" | "utf8" | "u8" => return Ok(LogEncoding::Utf8),
            "latin-1" | "latin1" | "l1" | "iso-8859-1" | "iso8859-1" | "iso8859" | "8859"
            | "cp819" | "iso-ir-100" => return Ok(LogEncoding::Latin1),
            _ => {}
        }
        // Python spellings that the Encoding Standard does not list.
        let l = match l.as_str() {
            "cp1250" | "cp1251" | "cp1252" | "cp1253" | "cp1254" | "cp1255" | "cp1256"
            | "cp1257" | "cp1258" => format!("windows-{}", &l[2..]),
            "shift-jis" | "sjis" => "shift_jis".to_string(),
            _ => l,
        };
        let Some(enc) = encoding_rs::Encoding::for_label(l.as_bytes()) else {
            return Err(SourceError::Encoding {
                name: label.to_string(),
                reason: "unknown encoding",
            });
        };
        if enc == encoding_rs::UTF_8 {
            return Ok(LogEncoding::Utf8);
        }
        if !enc.is_ascii_compatible() || enc == encoding_rs::REPLACEMENT {
            return Err(SourceError::Encoding {
                name: label.to_string(),
                reason: "not ASCII-compatible: lines cannot be split on the newline byte",
            });
        }
        Ok(LogEncoding::Other(enc))
    }

    /// The canonical name of the encoding.
    pub fn name(&self) -> &'static str {
        match self {
            LogEncoding::Utf8 => "utf-8",
            LogEncoding::Latin1 => "latin-1",
            LogEncoding::Other(e) => e.name(),
        }
    }

    /// Decodes `raw`; returns the text (borrowed from `raw` when it is valid as is, otherwise
    /// written into `scratch`) and whether any byte sequence had to be replaced.
    pub fn decode<'a>(&self, raw: &'a [u8], scratch: &'a mut String) -> (&'a str, bool) {
        // (simdutf8: validating every line with the standard library's costs ~200
        // instructions per nginx line, a measurable share of matching it)
        if let Ok(s) = simdutf8::basic::from_utf8(raw)
            && (matches!(self, LogEncoding::Utf8) || raw.is_ascii())
        {
            return (s, false);
        }
        scratch.clear();
        match self {
            LogEncoding::Utf8 => {
                let mut bad = false;
                for chunk in raw.utf8_chunks() {
                    scratch.push_str(chunk.valid());
                    if !chunk.invalid().is_empty() {
                        scratch.push(char::REPLACEMENT_CHARACTER);
                        bad = true;
                    }
                }
                (scratch.as_str(), bad)
            }
            LogEncoding::Latin1 => {
                scratch.extend(raw.iter().map(|&b| char::from(b)));
                (scratch.as_str(), false)
            }
            LogEncoding::Other(enc) => {
                let mut dec = enc.new_decoder_without_bom_handling();
                let need = dec
                    .max_utf8_buffer_length(raw.len())
                    .unwrap_or(raw.len().saturating_mul(3).saturating_add(16));
                scratch.reserve(need);
                let (_, _, bad) = dec.decode_to_string(raw, scratch, true);
                (scratch.as_str(), bad)
            }
        }
    }
}
