//! Splits a byte stream into lines of bounded length: what is past the cap
//! is dropped up to the next newline, so memory per stream stays bounded
//! whatever a child writes, and the line is marked as cut.

/// Accumulates the current line across reads.
pub(super) struct Splitter {
    max: usize,
    line: Vec<u8>,
    truncated: bool,
}

impl Splitter {
    pub(super) fn new(max: usize) -> Self {
        Self {
            max,
            line: Vec::new(),
            truncated: false,
        }
    }

    /// Feeds the next bytes read; `emit` gets each completed line (without
    /// `\n` or `\r\n`) and whether it was cut.
    pub(super) fn feed(&mut self, mut chunk: &[u8], mut emit: impl FnMut(&[u8], bool)) {
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            self.take(&chunk[..end]);
            self.emit(&mut emit);
            chunk = &chunk[end + 1..];
        }
        self.take(chunk);
    }

    /// The stream ended: a last line without a newline is still a line.
    pub(super) fn finish(&mut self, mut emit: impl FnMut(&[u8], bool)) {
        if !self.line.is_empty() || self.truncated {
            self.emit(&mut emit);
        }
    }

    fn take(&mut self, part: &[u8]) {
        let room = self.max - self.line.len();
        if part.len() > room {
            self.line.extend_from_slice(&part[..room]);
            self.truncated = true;
        } else {
            self.line.extend_from_slice(part);
        }
    }

    fn emit(&mut self, emit: &mut impl FnMut(&[u8], bool)) {
        let line = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
        emit(line, self.truncated);
        self.line.clear();
        self.truncated = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        let mut splitter = Splitter::new(max);
        for chunk in chunks {
            splitter.feed(chunk, |l, t| {
                out.push((String::from_utf8_lossy(l).into_owned(), t))
            });
        }
        splitter.finish(|l, t| out.push((String::from_utf8_lossy(l).into_owned(), t)));
        out
    }

    fn owned(lines: &[(&str, bool)]) -> Vec<(String, bool)> {
        lines.iter().map(|(l, t)| (l.to_string(), *t)).collect()
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        assert_eq!(
            split(100, &[b"one\ntw", b"o\r\n", b"\nthree"]),
            owned(&[
                ("one", false),
                ("two", false),
                ("", false),
                ("three", false)
            ])
        );
    }

    #[test]
    fn long_lines_are_cut_and_marked() {
        assert_eq!(
            split(4, &[b"abcdefgh\nok\n", b"123", b"45678\n"]),
            owned(&[("abcd", true), ("ok", false), ("1234", true)])
        );
    }

    #[test]
    fn a_line_of_exactly_the_cap_is_not_cut() {
        assert_eq!(split(4, &[b"abcd\n"]), owned(&[("abcd", false)]));
    }

    #[test]
    fn an_endless_line_holds_no_more_than_the_cap() {
        let mut splitter = Splitter::new(16);
        let mut emitted = 0;
        for _ in 0..10_000 {
            splitter.feed(&[b'x'; 1024], |_, _| emitted += 1);
            assert!(splitter.line.len() <= 16);
        }
        assert_eq!(emitted, 0);
        splitter.finish(|l, t| {
            assert_eq!((l.len(), t), (16, true));
            emitted += 1;
        });
        assert_eq!(emitted, 1);
    }
}
