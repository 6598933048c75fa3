//! Which columns hold the text and the tags: named, numbered, or recognised layouts.

use super::*;

/// Up to [`SNIFF_ROWS`] tag cells from the first bytes of the file.
pub(super) fn sample_cells(
    prefix: &[u8],
    complete: bool,
    delimiter: u8,
    has_header: bool,
    column: usize,
) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(has_header)
        .from_reader(prefix);
    let mut cells: Vec<String> = Vec::new();
    for record in reader.byte_records().take(SNIFF_ROWS + 1) {
        let Ok(record) = record else { break };
        if let Some(cell) = record.get(column) {
            cells.push(String::from_utf8_lossy(cell).into_owned());
        }
    }
    // The last record of a cut prefix may be cut too.
    if !complete || cells.len() > SNIFF_ROWS {
        cells.pop();
    }
    cells
}

/// BigQuery's `posts_questions` table has these columns besides `id,title,body,tags`.
pub(super) fn is_bigquery(header: &csv::ByteRecord) -> bool {
    let has = |name: &str| {
        header
            .iter()
            .any(|f| f.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
    };
    [
        "id",
        "title",
        "body",
        "tags",
        "post_type_id",
        "accepted_answer_id",
    ]
    .iter()
    .all(|n| has(n))
}

/// Which column has which role.
#[derive(Default)]
pub(super) struct Columns {
    pub(super) tags: Option<usize>,
    pub(super) text: Option<usize>,
    pub(super) title: Option<usize>,
    pub(super) body: Option<usize>,
    pub(super) id: Option<usize>,
}

impl Columns {
    fn set(&mut self, role: &str, i: usize) {
        let slot = match role {
            "tags" => &mut self.tags,
            "text" => &mut self.text,
            "title" => &mut self.title,
            "body" => &mut self.body,
            "id" => &mut self.id,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(i);
        }
    }

    /// E.g. `tags=Tags (4), text=Title (2) + Body (3)`.
    pub(super) fn describe(&self, header: Option<&csv::ByteRecord>, joined: bool) -> String {
        let name = |i: usize| match header.and_then(|h| h.get(i)) {
            Some(n) => format!(
                "{} (column {})",
                String::from_utf8_lossy(n.trim_ascii()),
                i + 1
            ),
            None => format!("column {}", i + 1),
        };
        let mut parts = Vec::new();
        match (joined, self.tags, self.id) {
            (true, _, Some(id)) => parts.push(format!("tags=Tags.csv on {}", name(id))),
            (false, Some(t), _) => parts.push(format!("tags={}", name(t))),
            _ => {}
        }
        match (self.text, self.title, self.body) {
            (Some(t), _, _) => parts.push(format!("text={}", name(t))),
            (None, Some(t), Some(b)) => parts.push(format!("text={} + {}", name(t), name(b))),
            (None, Some(t), None) | (None, None, Some(t)) => {
                parts.push(format!("text={}", name(t)))
            }
            (None, None, None) => {}
        }
        parts.join(", ")
    }
}

/// The columns by role, from the header's names, or the given names in order, or `role=column`
/// pairs; without a header and without `columns`, `tags,text`.
pub(super) fn resolve_columns(
    header: Option<&csv::ByteRecord>,
    spec: Option<&ColumnSpec>,
) -> Result<Columns> {
    let mut columns = Columns::default();
    let header_names: Vec<String> = header
        .map(|h| {
            h.iter()
                .map(|f| String::from_utf8_lossy(f.trim_ascii()).to_lowercase())
                .collect()
        })
        .unwrap_or_default();
    match spec {
        Some(ColumnSpec::Names(names)) => {
            for (i, n) in names.iter().enumerate() {
                columns.set(n, i);
            }
        }
        Some(ColumnSpec::Pairs(pairs)) => {
            for (role, column) in pairs {
                let i = match column {
                    ColumnRef::Index(i) => *i,
                    ColumnRef::Name(n) => {
                        header_names.iter().position(|h| h == n).ok_or_else(|| {
                            Error::config(
                                "columns",
                                match header {
                                    Some(h) => format!(
                                        "no column named {n:?} for {role} (header: {})",
                                        header_text(h)
                                    ),
                                    None => format!(
                                        "{role}={n}: a file without a header row has no column names; number the columns from 1"
                                    ),
                                },
                            )
                        })?
                    }
                };
                columns.set(role, i);
            }
            // Roles not given keep the header's columns.
            for (i, n) in header_names.iter().enumerate() {
                columns.set(n, i);
            }
        }
        None if header.is_some() => {
            for (i, n) in header_names.iter().enumerate() {
                columns.set(n, i);
            }
        }
        None => {
            columns.set("tags", 0);
            columns.set("text", 1);
        }
    }
    Ok(columns)
}

/// Warnings when the tags read look like whole cells that were not split: tags holding
/// characters that separate or wrap tags in other formats (`|`, `<`, `[`, quotes, spaces), or
/// nearly one tag per row with most tags seen only once.
pub(super) fn mis_split_warnings(distinct: &HashMap<String, u64>, rows: u64) -> Vec<String> {
    let mut warnings = Vec::new();
    if distinct.is_empty() {
        return warnings;
    }
    let odd = |t: &str| {
        t.contains(['|', '<', '>', '[', ']', '\'', '"', ';']) || t.contains(char::is_whitespace)
    };
    let mut strange: Vec<&str> = distinct
        .keys()
        .map(String::as_str)
        .filter(|t| odd(t))
        .collect();
    strange.sort_unstable();
    let hint = "set tag_format (comma, pipe, semicolon, space, angle, list) or tag_separator";
    if !strange.is_empty() && strange.len() * 20 >= distinct.len() {
        let examples: Vec<String> = strange.iter().take(3).map(|t| format!("{t:?}")).collect();
        warnings.push(format!(
            "the tags look mis-split: {} of the {} distinct tags hold a separator, bracket, quote or space (e.g. {}); {hint}",
            strange.len(),
            distinct.len(),
            examples.join(", ")
        ));
    }
    let occurrences: u64 = distinct.values().sum();
    let singletons = distinct.values().filter(|&&n| n == 1).count();
    if distinct.len() >= 20 && singletons * 2 > distinct.len() && occurrences * 20 <= rows * 21 {
        warnings.push(format!(
            "the tags look mis-split: {singletons} of the {} distinct tags occur in one row only, with {:.2} tags per row; {hint}",
            distinct.len(),
            occurrences as f64 / rows.max(1) as f64
        ));
    }
    warnings
}
