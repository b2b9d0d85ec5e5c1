//! Sans-IO receiver of the DATA section (RFC 5321 §4.1.1.4, §4.5.2).
//!
//! Only `CRLF.CRLF` ends the message. A bare CR or a bare LF anywhere is recorded and the message
//! refused after draining: different MTAs disagree on what a bare LF means, and that disagreement
//! is what "SMTP smuggling" exploits to hide a second message inside the first one. Because we
//! refuse the whole message, nothing after a bare line ending can ever be read as commands.
//!
//! The receiver undoes dot-stuffing, enforces the size and line-length limits and hands the body
//! back in slices, so the session streams it to the spool without holding it whole.

/// What went wrong with a message; the first problem found is kept and the message is drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataProblem {
    /// A CR not followed by LF, or a LF not preceded by CR.
    BareLineEnding,
    /// The message is larger than the limit.
    TooBig,
    /// A text line is longer than the limit.
    LineTooLong,
}

/// Result of feeding bytes to the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Input bytes consumed; the rest (after the end of data) belongs to the next commands.
    pub consumed: usize,
    /// True once `CRLF.CRLF` was seen.
    pub finished: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the beginning of a line (after CRLF, or at the very start).
    LineStart,
    /// A `.` at the beginning of a line.
    Dot,
    /// `.CR` at the beginning of a line.
    DotCr,
    /// Inside a line.
    Text,
    /// A CR inside a line, waiting for LF.
    Cr,
}

/// Incremental DATA decoder.
#[derive(Debug)]
pub struct DataReceiver {
    state: State,
    max_size: u64,
    max_line: usize,
    size: u64,
    line_length: usize,
    problem: Option<DataProblem>,
}

impl DataReceiver {
    /// A receiver for a message of at most `max_size` octets and lines of at most `max_line`
    /// octets including CRLF.
    pub fn new(max_size: u64, max_line: usize) -> DataReceiver {
        DataReceiver {
            state: State::LineStart,
            max_size,
            max_line,
            size: 0,
            line_length: 0,
            problem: None,
        }
    }

    /// The first problem met, if any: the message must be refused once drained.
    pub fn problem(&self) -> Option<DataProblem> {
        self.problem
    }

    /// Octets of message content decoded so far (dot-unstuffed).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Decodes `input`, appending message content to `out` (nothing once a problem was found).
    /// Stops right after the terminating `CRLF.CRLF`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Progress {
        let mut index = 0;
        while index < input.len() {
            let byte = input[index];
            match self.state {
                State::Text if byte != b'\r' && byte != b'\n' => {
                    // Fast path: copy the run of ordinary bytes up to the next CR or LF.
                    let run = input[index..]
                        .iter()
                        .position(|&b| b == b'\r' || b == b'\n')
                        .unwrap_or(input.len() - index);
                    self.emit(&input[index..index + run], out);
                    index += run;
                    continue;
                }
                State::Text | State::LineStart => match byte {
                    b'\r' => self.state = State::Cr,
                    b'\n' => self.bare(),
                    b'.' if self.state == State::LineStart => self.state = State::Dot,
                    _ => {
                        self.emit(&[byte], out);
                        self.state = State::Text;
                    }
                },
                State::Dot => match byte {
                    b'\r' => self.state = State::DotCr,
                    b'\n' => {
                        self.emit(b".", out);
                        self.bare();
                    }
                    // Dot-stuffing: the leading dot of a line is removed (§4.5.2).
                    _ => {
                        self.emit(&[byte], out);
                        self.state = State::Text;
                    }
                },
                State::DotCr => {
                    if byte == b'\n' {
                        return Progress {
                            consumed: index + 1,
                            finished: true,
                        };
                    }
                    // `.CR` then something else: a bare CR; re-read the byte as text.
                    self.emit(b".\r", out);
                    self.bare();
                    continue;
                }
                State::Cr => {
                    if byte == b'\n' {
                        self.emit(b"\r\n", out);
                        self.line_length = 0;
                        self.state = State::LineStart;
                    } else {
                        self.emit(b"\r", out);
                        self.bare();
                        continue;
                    }
                }
            }
            index += 1;
        }
        Progress {
            consumed: input.len(),
            finished: false,
        }
    }

    /// Records a bare CR/LF and continues in the middle of a line, so that a following `.CRLF`
    /// is not taken as the end of data: only a real `CRLF.CRLF` ends it.
    fn bare(&mut self) {
        self.flag(DataProblem::BareLineEnding);
        self.state = State::Text;
    }

    fn flag(&mut self, problem: DataProblem) {
        if self.problem.is_none() {
            self.problem = Some(problem);
        }
    }

    fn emit(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        self.size += bytes.len() as u64;
        if bytes != b"\r\n" {
            self.line_length += bytes.len();
            // +2 for the CRLF that will end the line.
            if self.line_length + 2 > self.max_line {
                self.flag(DataProblem::LineTooLong);
            }
        }
        if self.size > self.max_size {
            self.flag(DataProblem::TooBig);
        }
        if self.problem.is_none() {
            out.extend_from_slice(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> (Vec<u8>, Progress, Option<DataProblem>) {
        let mut receiver = DataReceiver::new(1000, 100);
        let mut out = Vec::new();
        let progress = receiver.feed(input, &mut out);
        (out, progress, receiver.problem())
    }

    #[test]
    fn ends_at_crlf_dot_crlf_and_unstuffs() {
        let (out, progress, problem) = run(b"a\r\n..b\r\n.\r\nQUIT\r\n");
        assert_eq!(out, b"a\r\n.b\r\n");
        assert_eq!(progress.consumed, 11);
        assert!(progress.finished);
        assert_eq!(problem, None);
    }

    #[test]
    fn empty_message() {
        let (out, progress, _) = run(b".\r\n");
        assert!(out.is_empty() && progress.finished);
    }

    #[test]
    fn bare_lf_dot_lf_does_not_end() {
        let (_, progress, problem) = run(b"a\n.\nMAIL FROM:<x@y>\r\n");
        assert!(!progress.finished);
        assert_eq!(problem, Some(DataProblem::BareLineEnding));
        let (_, progress, _) = run(b"a\r\n.\nb\r\n.\r\n");
        assert!(progress.finished);
    }

    #[test]
    fn bare_cr_is_flagged_and_crlf_dot_cr_does_not_end() {
        let (_, progress, problem) = run(b"a\rb\r\n.\rX\r\n.\r\n");
        assert!(progress.finished);
        assert_eq!(progress.consumed, 13);
        assert_eq!(problem, Some(DataProblem::BareLineEnding));
    }

    #[test]
    fn end_split_across_feeds() {
        let mut receiver = DataReceiver::new(1000, 100);
        let mut out = Vec::new();
        for chunk in [&b"abc\r"[..], b"\n", b".", b"\r", b"\n"] {
            let progress = receiver.feed(chunk, &mut out);
            if progress.finished {
                assert_eq!(out, b"abc\r\n");
                return;
            }
        }
        panic!("end not found");
    }

    #[test]
    fn size_and_line_limits() {
        let mut receiver = DataReceiver::new(10, 1000);
        let mut out = Vec::new();
        let progress = receiver.feed(b"0123456789\r\n.\r\n", &mut out);
        assert!(progress.finished);
        assert_eq!(receiver.problem(), Some(DataProblem::TooBig));
        let (_, _, problem) = run(&[b'x'; 99]);
        assert_eq!(problem, Some(DataProblem::LineTooLong));
        let (_, _, problem) = run(&[b'x'; 98]);
        assert_eq!(problem, None);
    }

    proptest::proptest! {
        #[test]
        fn roundtrip_of_stuffed_text(lines in proptest::collection::vec("[ -~]{0,50}", 0..20)) {
            let mut wire = Vec::new();
            let mut expected = Vec::new();
            for line in &lines {
                if line.starts_with('.') { wire.push(b'.'); }
                wire.extend_from_slice(line.as_bytes());
                wire.extend_from_slice(b"\r\n");
                expected.extend_from_slice(line.as_bytes());
                expected.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b".\r\n");
            let mut receiver = DataReceiver::new(1 << 20, 1000);
            let mut out = Vec::new();
            let mut finished = false;
            for chunk in wire.chunks(7) {
                finished = receiver.feed(chunk, &mut out).finished;
            }
            proptest::prop_assert!(finished);
            proptest::prop_assert_eq!(out, expected);
        }
    }
}
