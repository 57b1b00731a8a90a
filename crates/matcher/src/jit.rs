//! PCRE2 programs called through `pcre2-sys` directly.
//!
//! The `pcre2` crate's search goes through `pcre2_match`, whose checks of its arguments
//! cost about as much per call as a typical JIT search of a filter regex on a log line. A
//! [`Program`] compiled with JIT calls `pcre2_jit_match` instead, the JIT's own entry point
//! (PCRE2's "fast path" API), with the same compile options (`UTF | UCP | MATCH_INVALID_UTF`,
//! as the `pcre2` crate sets them), the same JIT stack (32 KiB growing to the size given) and
//! the same match data, so every result is the same. Without JIT (a platform without it, or
//! a pattern the JIT refuses) it calls `pcre2_match`, as the `pcre2` crate does.
//!
//! `pcre2_jit_match` skips `pcre2_match`'s checks: of the options (none are passed), of the
//! match data (made from this program, checked on each call), and of the subject's UTF-8
//! (with `PCRE2_MATCH_INVALID_UTF` the program itself handles any bytes, and the callers pass
//! `&str` anyway).

#![allow(unsafe_code)]

use std::ptr;

use pcre2_sys::{
    PCRE2_ERROR_NOMATCH, PCRE2_JIT_COMPLETE, PCRE2_MATCH_INVALID_UTF, PCRE2_UCP, PCRE2_UNSET,
    PCRE2_UTF, pcre2_code_8, pcre2_code_free_8, pcre2_compile_8, pcre2_get_ovector_count_8,
    pcre2_get_ovector_pointer_8, pcre2_jit_compile_8, pcre2_jit_match_8, pcre2_jit_stack_8,
    pcre2_jit_stack_assign_8, pcre2_jit_stack_create_8, pcre2_jit_stack_free_8, pcre2_match_8,
    pcre2_match_context_8, pcre2_match_context_create_8, pcre2_match_context_free_8,
    pcre2_match_data_8, pcre2_match_data_create_from_pattern_8, pcre2_match_data_free_8,
};

/// A compiled PCRE2 pattern (JIT when available), immutable once built.
pub(crate) struct Program {
    code: *mut pcre2_code_8,
    /// JIT compilation succeeded: searches call `pcre2_jit_match`.
    jit: bool,
    /// Largest JIT stack of a search (bytes).
    max_jit_stack: usize,
}

// SAFETY: a compiled code object is immutable once built (JIT compilation happens in
// `Program::new`, before it is shared) and PCRE2 allows its concurrent use by several threads,
// each with its own match data.
unsafe impl Send for Program {}
// SAFETY: as above.
unsafe impl Sync for Program {}

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: `code` came from `pcre2_compile_8` and is freed once, here.
        unsafe { pcre2_code_free_8(self.code) }
    }
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program").field("jit", &self.jit).finish()
    }
}

impl Program {
    /// Compiles `pattern` with `UTF | UCP | MATCH_INVALID_UTF` (the `pcre2` crate's
    /// `utf(true).ucp(true)`), then with JIT when available; a search's JIT stack grows up to
    /// `max_jit_stack` bytes. `Err` holds PCRE2's compile error code.
    pub(crate) fn new(pattern: &str, max_jit_stack: usize) -> Result<Program, i32> {
        let (mut error_code, mut error_offset) = (0, 0);
        // SAFETY: the pattern pointer and length describe a live string; a null compile
        // context means PCRE2's defaults (the `pcre2` crate passes a default one).
        let code = unsafe {
            pcre2_compile_8(
                pattern.as_ptr(),
                pattern.len(),
                PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF,
                &mut error_code,
                &mut error_offset,
                ptr::null_mut(),
            )
        };
        if code.is_null() {
            return Err(error_code);
        }
        // SAFETY: `code` is a valid code object not yet shared.
        let jit = unsafe { pcre2_jit_compile_8(code, PCRE2_JIT_COMPLETE) } == 0;
        Ok(Program {
            code,
            jit,
            max_jit_stack,
        })
    }

    /// Number of capturing groups (without group 0).
    #[cfg(test)]
    pub(crate) fn capture_count(&self) -> usize {
        let mut n: u32 = 0;
        // SAFETY: CAPTURECOUNT writes a uint32_t.
        let rc = unsafe {
            pcre2_sys::pcre2_pattern_info_8(
                self.code,
                pcre2_sys::PCRE2_INFO_CAPTURECOUNT,
                (&raw mut n).cast(),
            )
        };
        assert_eq!(rc, 0, "pattern info");
        n as usize
    }

    /// Match data (ovector, match context, JIT stack) for searches of this program.
    pub(crate) fn match_data(&self) -> MatchData {
        // SAFETY: plain constructors on a valid code object; every result is checked.
        unsafe {
            let data = pcre2_match_data_create_from_pattern_8(self.code, ptr::null_mut());
            assert!(!data.is_null(), "failed to allocate match data");
            let context = pcre2_match_context_create_8(ptr::null_mut());
            assert!(!context.is_null(), "failed to allocate match context");
            let mut stack = ptr::null_mut();
            if self.jit {
                stack = pcre2_jit_stack_create_8(
                    self.max_jit_stack.min(32 << 10),
                    self.max_jit_stack,
                    ptr::null_mut(),
                );
                assert!(!stack.is_null(), "failed to allocate JIT stack");
                pcre2_jit_stack_assign_8(context, None, stack.cast());
            }
            let ovector = pcre2_get_ovector_pointer_8(data);
            assert!(!ovector.is_null(), "no ovector");
            let pairs = pcre2_get_ovector_count_8(data) as usize;
            MatchData {
                code: self.code,
                data,
                context,
                stack,
                ovector,
                pairs,
            }
        }
    }

    /// Searches `subject` from its start (no options): `Ok(true)` with the groups in `md`,
    /// `Ok(false)` for no match, `Err` with PCRE2's error code (match or depth limit, JIT
    /// stack exhausted).
    #[inline]
    pub(crate) fn search(&self, md: &mut MatchData, subject: &[u8]) -> Result<bool, i32> {
        assert!(ptr::eq(md.code, self.code), "match data of another program");
        // A non-dangling pointer even for an empty subject (some PCRE2 versions read it).
        static ONE: [u8; 1] = [0];
        let at = if subject.is_empty() {
            ONE.as_ptr()
        } else {
            subject.as_ptr()
        };
        // SAFETY: `at` and the length describe readable memory; the match data was created
        // from this code object (checked above), so its ovector fits every group; the JIT
        // entry point is only used on a code object compiled with PCRE2_JIT_COMPLETE, without
        // options; `MATCH_INVALID_UTF` makes any subject bytes valid input.
        let rc = unsafe {
            if self.jit {
                pcre2_jit_match_8(self.code, at, subject.len(), 0, 0, md.data, md.context)
            } else {
                pcre2_match_8(self.code, at, subject.len(), 0, 0, md.data, md.context)
            }
        };
        match rc {
            PCRE2_ERROR_NOMATCH => Ok(false),
            // (0 would mean an ovector too small: impossible with match data from the pattern)
            rc if rc > 0 => Ok(true),
            rc => Err(rc),
        }
    }
}

/// Per-search state of one [`Program`]: its ovector, match context and JIT stack.
pub(crate) struct MatchData {
    /// The program this match data was made from.
    code: *const pcre2_code_8,
    data: *mut pcre2_match_data_8,
    context: *mut pcre2_match_context_8,
    /// Null without JIT.
    stack: *mut pcre2_jit_stack_8,
    ovector: *const usize,
    /// Pairs in the ovector (groups + 1).
    pairs: usize,
}

// SAFETY: the match data, context and stack are owned by this value alone; moving them to
// another thread is allowed (only concurrent use is not, which `&mut` prevents).
unsafe impl Send for MatchData {}

impl Drop for MatchData {
    fn drop(&mut self) {
        // SAFETY: each pointer came from its constructor and is freed once, here (the context
        // before the stack it refers to).
        unsafe {
            pcre2_match_data_free_8(self.data);
            pcre2_match_context_free_8(self.context);
            if !self.stack.is_null() {
                pcre2_jit_stack_free_8(self.stack);
            }
        }
    }
}

impl MatchData {
    /// The ovector: `2 * (groups + 1)` offsets.
    fn ovector(&self) -> &[usize] {
        // SAFETY: the pointer and count come from this match data, which lives as long as
        // the borrow; PCRE2 initialises the ovector when it creates the match data.
        unsafe { std::slice::from_raw_parts(self.ovector, 2 * self.pairs) }
    }

    /// Number of groups plus one (group 0, the whole match).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.pairs
    }

    /// Appends the span of every group of the last successful search (`None`: did not
    /// participate), group 0 first.
    #[inline]
    pub(crate) fn spans_into(&self, spans: &mut Vec<Option<(usize, usize)>>) {
        spans.extend(self.ovector().chunks_exact(2).map(|p| {
            if p[0] == PCRE2_UNSET || p[1] == PCRE2_UNSET {
                None
            } else {
                Some((p[0], p[1]))
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_errors_as_the_pcre2_crate_reports_them() {
        let cases = [
            (r"^(a)?(b+)(?<n>c)?", "bbc"),
            (r"x(y)?", "zz"),
            (r"(\w)(é)", "aé"),
            ("", ""),
            (
                r"^(?:a|aa)*c",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
            ),
        ];
        for (pat, hay) in cases {
            let limited = format!("(*LIMIT_MATCH=1000){pat}");
            let theirs = pcre2::bytes::RegexBuilder::new()
                .utf(true)
                .ucp(true)
                .jit_if_available(true)
                .max_jit_stack_size(Some(1 << 20))
                .build(&limited)
                .unwrap();
            let ours = Program::new(&limited, 1 << 20).unwrap();
            let mut locs = theirs.capture_locations();
            let mut md = ours.match_data();
            assert_eq!(md.len(), locs.len());
            assert_eq!(ours.capture_count() + 1, locs.len());
            let expected = theirs.captures_read(&mut locs, hay.as_bytes());
            let found = ours.search(&mut md, hay.as_bytes());
            assert_eq!(found.is_err(), expected.is_err(), "{pat} on {hay}");
            assert_eq!(
                found.ok(),
                expected.ok().map(|m| m.is_some()),
                "{pat} on {hay}"
            );
            if found == Ok(true) {
                let mut spans = Vec::new();
                md.spans_into(&mut spans);
                let theirs: Vec<_> = (0..locs.len()).map(|i| locs.get(i)).collect();
                assert_eq!(spans, theirs, "{pat} on {hay}");
            }
        }
        assert!(Program::new("a(b", 1 << 20).is_err());
    }
}
