//! Finds quotes that merge rows, as the bytes stream past the CSV reader. The `csv` crate (like
//! most readers) is lenient: an unclosed quote reads to the end of the file as one field, and
//! one closed in the middle of a later field (`"never closed` ... `"quoted" text`) silently
//! merges every row in between into one. Both are detected here by following RFC 4180's
//! quoting: a quote opens a quoted field only at the start of a field, `""` inside one is a
//! literal quote, and a closing quote is followed by a delimiter or the end of the record.

use std::io::Read;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    StartField,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: the closing one, or the first of `""`.
    QuoteInQuoted,
    /// `\r` right after a closing quote (a CRLF line end).
    ClosedCr,
}

/// A quoting problem, by the row (1-based data rows; the header is row 0) whose quote opened it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuoteProblem {
    /// The file ends inside a quoted field spanning `lines` line breaks.
    Unclosed { row: u64, lines: u64 },
    /// A quoted field spanning `lines` line breaks closes with more text after it, on `line`.
    Merged { row: u64, lines: u64, line: u64 },
}

/// A reader that follows the quoting of the bytes it passes on and keeps the first problem.
pub struct QuoteCheck<R> {
    inner: R,
    delimiter: u8,
    state: State,
    /// Records completed so far that were not empty lines (the header counts).
    records: u64,
    record_empty: bool,
    /// 1-based physical line of the next byte.
    line: u64,
    open_row: u64,
    open_lines: u64,
    pub problem: Option<QuoteProblem>,
}

impl<R> QuoteCheck<R> {
    pub fn new(inner: R, delimiter: u8) -> Self {
        QuoteCheck {
            inner,
            delimiter,
            state: State::StartField,
            records: 0,
            record_empty: true,
            line: 1,
            open_row: 0,
            open_lines: 0,
            problem: None,
        }
    }

    /// For a file without a header row: its first record is data row 1, as the reader counts.
    pub fn without_header(mut self) -> Self {
        self.records = 1;
        self
    }

    fn end_record(&mut self) {
        if !self.record_empty {
            self.records += 1;
        }
        self.record_empty = true;
        self.line += 1;
        self.state = State::StartField;
    }

    fn feed(&mut self, bytes: &[u8]) {
        let d = self.delimiter;
        let mut i = 0;
        while i < bytes.len() && self.problem.is_none() {
            // Skip the bytes that cannot change the state in one search.
            match self.state {
                State::Unquoted => match memchr::memchr2(d, b'\n', &bytes[i..]) {
                    Some(k) => i += k,
                    None => return,
                },
                State::Quoted => match memchr::memchr2(b'"', b'\n', &bytes[i..]) {
                    Some(k) => i += k,
                    None => return,
                },
                _ => {}
            }
            let b = bytes[i];
            i += 1;
            self.state = match (self.state, b) {
                (State::Quoted, b'"') => State::QuoteInQuoted,
                (State::Quoted, _) => {
                    // b'\n': the only other byte the search stops at.
                    self.line += 1;
                    self.open_lines += 1;
                    State::Quoted
                }
                (State::QuoteInQuoted, b'"') => State::Quoted,
                (State::QuoteInQuoted, b'\r') => State::ClosedCr,
                (State::QuoteInQuoted | State::ClosedCr, b'\n') => {
                    self.end_record();
                    continue;
                }
                (State::QuoteInQuoted | State::ClosedCr, c) if c == d => State::StartField,
                (State::QuoteInQuoted | State::ClosedCr, _) => {
                    // Text after a closing quote. On one line that is a harmless quirk the
                    // reader accepts (`"a" b`); after a line break it means rows were merged.
                    if self.open_lines > 0 {
                        self.problem = Some(QuoteProblem::Merged {
                            row: self.open_row,
                            lines: self.open_lines,
                            line: self.line,
                        });
                    }
                    State::Unquoted
                }
                (State::StartField | State::Unquoted, b'\n') => {
                    self.end_record();
                    continue;
                }
                (State::StartField, b'"') => {
                    self.record_empty = false;
                    self.open_row = self.records;
                    self.open_lines = 0;
                    State::Quoted
                }
                (State::StartField, b'\r') => State::StartField,
                (State::StartField, c) if c == d => {
                    self.record_empty = false;
                    State::StartField
                }
                (State::StartField | State::Unquoted, c) => {
                    self.record_empty = false;
                    if c == d {
                        State::StartField
                    } else {
                        State::Unquoted
                    }
                }
            };
        }
    }

    fn finish(&mut self) {
        if self.problem.is_none() && self.state == State::Quoted {
            self.problem = Some(QuoteProblem::Unclosed {
                row: self.open_row,
                lines: self.open_lines,
            });
        }
    }
}

impl<R: Read> Read for QuoteCheck<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.finish();
        } else {
            self.feed(&buf[..n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(data: &[u8]) -> Option<QuoteProblem> {
        let mut r = QuoteCheck::new(data, b',');
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        r.problem
    }

    #[test]
    fn well_formed_quoting_passes() {
        assert_eq!(
            check(b"tags,text\na,\"multi\nline, with \"\"quotes\"\"\"\r\nb,plain\n"),
            None
        );
        assert_eq!(check(b"tags,text\na,\"no newline at the end\""), None);
        assert_eq!(
            check(b"tags,text\n\"a,b\",\"x\"\n\nc,say \"hi\" there\n"),
            None
        );
        assert_eq!(check(b"tags,text\na,\"one line\" quirk\n"), None);
    }

    #[test]
    fn unclosed_quote_at_the_end() {
        assert_eq!(
            check(b"tags,text\na,fine\nb,\"never closed"),
            Some(QuoteProblem::Unclosed { row: 2, lines: 0 })
        );
        assert_eq!(
            check(b"tags,text\n\na,fine\nb,\"never closed\nc,x\n"),
            Some(QuoteProblem::Unclosed { row: 2, lines: 2 })
        );
    }

    #[test]
    fn quote_that_merges_rows() {
        assert_eq!(
            check(b"tags,text\na,\"opened\nb,fine\nc,\"quoted\" text\nd,after\n"),
            Some(QuoteProblem::Merged {
                row: 1,
                lines: 2,
                line: 4
            })
        );
    }
}
