//! Labelled picture sets for calibration and benchmarks, in the `labels.csv` format of the
//! development set: `file, age_bin, gender, ..., age_exact`. Only the columns named here are
//! kept; every other column (ethnicity among them) is skipped unread — AudienceLens never infers
//! or stores ethnicity.
//!
//! Owns: the labels CSV format and age bins. Uses: `result` (gender, brackets).

use std::path::Path;

use super::result::{Bracket, Gender};

/// The columns read; all others are skipped.
const COLUMNS: [&str; 5] = ["file", "gender", "age_exact", "age_bin", "category"];

/// An age range from the labels, inclusive; `hi` is `None` for an open range ("more than 70").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgeBin {
    pub lo: u32,
    pub hi: Option<u32>,
}

impl AgeBin {
    /// Parses "20-29", "more than 70", "70+".
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Some((lo, hi)) = text.split_once('-') {
            let (lo, hi) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
            return (lo <= hi).then_some(Self { lo, hi: Some(hi) });
        }
        let open = text.strip_prefix("more than").or_else(|| text.strip_suffix('+'))?;
        Some(Self { lo: open.trim().parse().ok()?, hi: None })
    }

    #[must_use]
    pub fn label(&self) -> String {
        match self.hi {
            Some(hi) => format!("{}-{hi}", self.lo),
            None => format!("{}+", self.lo),
        }
    }

    /// Distance in years from `age` to the range (0 inside).
    #[must_use]
    pub fn distance(&self, age: f64) -> f64 {
        let below = f64::from(self.lo) - age;
        let above = self.hi.map_or(f64::NEG_INFINITY, |hi| age - f64::from(hi));
        below.max(above).max(0.0)
    }
}

/// One labelled picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    pub file: String,
    pub gender: Option<Gender>,
    /// Exact age in years, when known (UTKFace-style).
    pub age: Option<u32>,
    /// Annotated age range, when known (FairFace-style).
    pub bin: Option<AgeBin>,
    /// What a picture without a person shows (`pet_dog`, `logo_brand`, ...), when labelled.
    pub category: Option<String>,
}

impl Labelled {
    /// The true bracket, from an exact age only (a 10-year bin spans two brackets).
    #[must_use]
    pub fn bracket(&self) -> Option<Bracket> {
        self.age.map(|a| Bracket::of_age(i64::from(a)))
    }

    /// Kept by an "aged `min` and over" filter: an exact age at least `min`, or a bin reaching it.
    #[must_use]
    pub fn reaches_age(&self, min: u32) -> bool {
        match (&self.age, &self.bin) {
            (Some(age), _) => *age >= min,
            (None, Some(bin)) => bin.hi.is_none_or(|hi| hi >= min),
            (None, None) => false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LabelsError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: the header has no `file` column")]
    NoFileColumn { path: String },
}

/// Splits CSV text into records of fields (RFC 4180 quoting; newlines inside quotes allowed).
/// `keep(i)` says which field positions to store; others are skipped without being kept.
fn records(text: &str, keep: impl Fn(usize) -> bool) -> Vec<Vec<Option<String>>> {
    let mut out = Vec::new();
    let (mut record, mut field) = (Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    let push_field = |record: &mut Vec<Option<String>>, field: &mut String| {
        let value = std::mem::take(field);
        record.push(keep(record.len()).then_some(value));
    };
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => push_field(&mut record, &mut field),
            ('\n', false) => {
                push_field(&mut record, &mut field);
                out.push(std::mem::take(&mut record));
            }
            ('\r', false) => {}
            (c, _) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        push_field(&mut record, &mut field);
        out.push(record);
    }
    out
}

/// A non-empty cell of a parsed row.
fn cell(row: &[Option<String>], column: Option<usize>) -> Option<&str> {
    column.and_then(|c| row.get(c)).and_then(Option::as_deref).map(str::trim).filter(|v| !v.is_empty())
}

/// Parses labels CSV text.
pub fn parse(text: &str, path: &str) -> Result<Vec<Labelled>, LabelsError> {
    let header_end = text.find('\n').unwrap_or(text.len());
    let header: Vec<String> = records(&text[..header_end], |_| true)
        .into_iter()
        .next()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect();
    let position = |name: &str| header.iter().position(|h| h.trim() == name);
    let [file, gender, age_exact, age_bin, category] = COLUMNS.map(position);
    let file = file.ok_or_else(|| LabelsError::NoFileColumn { path: path.to_owned() })?;
    let wanted = [Some(file), gender, age_exact, age_bin, category];
    let rows = records(&text[header_end..], |i| wanted.contains(&Some(i)));
    Ok(rows
        .iter()
        .filter_map(|row| {
            Some(Labelled {
                file: cell(row, Some(file))?.to_owned(),
                gender: cell(row, gender).and_then(Gender::parse),
                age: cell(row, age_exact).and_then(|v| v.parse::<f64>().ok()).map(|v| v as u32),
                bin: cell(row, age_bin).and_then(AgeBin::parse),
                category: cell(row, category).map(str::to_owned),
            })
        })
        .collect())
}

/// Reads a labels CSV file.
pub fn read(path: &Path) -> Result<Vec<Labelled>, LabelsError> {
    let shown = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|source| LabelsError::Read { path: shown.clone(), source })?;
    parse(&text, &shown)
}

#[cfg(test)]
#[expect(clippy::float_cmp, reason = "exactly representable values")]
mod tests {
    use super::*;

    const CSV: &str = "file,age_bin,gender,race,source,age_exact\n\
        a.jpg,20-29,female,SECRET,\"repo, with comma\",\n\
        b.jpg,,male,SECRET,x,16\n\
        \"c \"\"q\"\".jpg\",more than 70,,SECRET,x,\n\
        d.jpg,3-9,female,SECRET,x,\n";

    #[test]
    fn labels_are_parsed_and_other_columns_never_kept() {
        let rows = parse(CSV, "labels.csv").unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].gender, Some(Gender::Female));
        assert_eq!(rows[0].bin, Some(AgeBin { lo: 20, hi: Some(29) }));
        assert_eq!((rows[1].age, rows[1].bracket()), (Some(16), Some(Bracket::Teen)));
        assert_eq!(rows[2].file, "c \"q\".jpg");
        assert_eq!(rows[2].bin, Some(AgeBin { lo: 70, hi: None }));
        assert!(!format!("{rows:?}").contains("SECRET"));
        assert!(rows.iter().all(|r| r.category.is_none()));
        let pets = parse("file,category\npug.jpg,pet_dog\n", "l.csv").unwrap();
        assert_eq!(pets[0].category.as_deref(), Some("pet_dog"));
        let kept = records(CSV, |i| i != 3);
        assert!(kept.iter().all(|r| r[3].is_none()), "the skipped column is not stored");
    }

    #[test]
    fn age_filters_and_distances() {
        let rows = parse(CSV, "labels.csv").unwrap();
        let kept: Vec<&str> = rows.iter().filter(|r| r.reaches_age(13)).map(|r| r.file.as_str()).collect();
        assert_eq!(kept, ["a.jpg", "b.jpg", "c \"q\".jpg"]);
        let bin = AgeBin { lo: 20, hi: Some(29) };
        assert_eq!((bin.distance(25.0), bin.distance(17.0), bin.distance(31.5)), (0.0, 3.0, 2.5));
        assert_eq!(AgeBin { lo: 70, hi: None }.distance(90.0), 0.0);
        assert_eq!(AgeBin::parse("70+").map(|b| b.label()), Some("70+".to_owned()));
        assert!(parse("name,gender\nx,male\n", "l.csv").is_err());
    }
}
