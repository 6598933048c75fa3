//! What reading skipped, detected and warned about: the load report.

use super::*;

/// Why a row was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SkipReason {
    /// The row has fewer fields than it needs (the `tags` or text column is absent).
    MissingField,
    /// The row has more fields than the header: usually an unquoted comma in the text.
    MalformedRow,
    /// A needed field is not valid UTF-8.
    InvalidUtf8,
    /// The text is longer than [`CsvOptions::max_text_bytes`].
    TextTooLong,
    /// The text is empty or only whitespace.
    EmptyText,
    /// The `tags` field holds no tag.
    NoTags,
    /// The `tags` field holds more than [`MAX_TAGS_PER_ROW`] tags.
    TooManyTags,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::MissingField => "missing field",
            SkipReason::MalformedRow => "more fields than the header",
            SkipReason::InvalidUtf8 => "invalid utf-8",
            SkipReason::TextTooLong => "text too long",
            SkipReason::EmptyText => "empty text",
            SkipReason::NoTags => "no tags",
            SkipReason::TooManyTags => "more than 100 tags",
        })
    }
}

/// How many rows were skipped for one reason, and the first few of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkipCount {
    pub reason: SkipReason,
    pub count: u64,
    /// Up to [`LoadReport::FIRST_ROWS`] 1-based data row numbers (the header is row 0).
    pub first_rows: Vec<u64>,
}

/// What [`read_csv`] did with the rows it read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    pub rows_read: u64,
    pub rows_used: u64,
    /// One entry per reason that occurred, in [`SkipReason`] order.
    pub skipped: Vec<SkipCount>,
    /// How the file was read (delimiter, columns, tag format), set or detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FormatReport>,
    /// Signs that the file was misread, such as tags that look like unsplit cells.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl LoadReport {
    pub const FIRST_ROWS: usize = 5;

    pub fn rows_skipped(&self) -> u64 {
        self.skipped.iter().map(|s| s.count).sum()
    }

    pub fn count(&self, reason: SkipReason) -> u64 {
        self.skipped
            .iter()
            .find(|s| s.reason == reason)
            .map_or(0, |s| s.count)
    }

    pub(super) fn skip(&mut self, reason: SkipReason, row: u64) {
        let at = match self.skipped.binary_search_by(|s| s.reason.cmp(&reason)) {
            Ok(at) => at,
            Err(at) => {
                self.skipped.insert(
                    at,
                    SkipCount {
                        reason,
                        count: 0,
                        first_rows: Vec::new(),
                    },
                );
                at
            }
        };
        let entry = &mut self.skipped[at];
        entry.count += 1;
        if entry.first_rows.len() < Self::FIRST_ROWS {
            entry.first_rows.push(row);
        }
    }

    /// The skipped rows in one line, e.g. `2 empty text (rows 3, 9); 1 no tags (row 4)`.
    pub fn skipped_summary(&self) -> String {
        if self.skipped.is_empty() {
            return "none".to_string();
        }
        let parts: Vec<String> = self
            .skipped
            .iter()
            .map(|s| {
                let rows: Vec<String> = s.first_rows.iter().map(u64::to_string).collect();
                let more = if s.count > s.first_rows.len() as u64 {
                    ", ..."
                } else {
                    ""
                };
                let noun = if s.first_rows.len() == 1 {
                    "row"
                } else {
                    "rows"
                };
                format!(
                    "{} {} ({noun} {}{more})",
                    s.count,
                    s.reason,
                    rows.join(", ")
                )
            })
            .collect();
        parts.join("; ")
    }

    /// E.g. `read 120 rows, used 117; skipped: 2 empty text (rows 3, 9); 1 no tags (row 4)`.
    pub fn summary(&self) -> String {
        format!(
            "read {} rows, used {}; skipped: {}",
            self.rows_read,
            self.rows_used,
            self.skipped_summary()
        )
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}
