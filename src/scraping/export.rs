//! Reading Apify dataset exports: a JSON array, JSON lines (or concatenated, pretty-printed
//! objects), or CSV with flattened columns (`latestComments/0/ownerUsername`), with or
//! without a UTF-8 BOM. The file is streamed: items are handed over one by one with their
//! position, never more than one item is held, and an item over [`MAX_ITEM_BYTES`] is skipped
//! (reported as a rejected item) without being kept in memory.
//!
//! One rule for damage: a file whose JSON or CSV is broken anywhere (cut off, a syntax error,
//! a row that is not UTF-8) is [`ExportError::Damaged`], named by line and byte offset, and
//! the caller imports nothing from it. Well-formed items that are not usable are the caller's
//! to reject one by one.

use std::io::{BufRead, BufReader, Read};

use serde_json::{Map, Value};

/// Largest single item accepted (a JSON array element, a JSON line, a CSV row). Apify items
/// are a few kilobytes; a profile with its latest posts and their comments stays far below.
pub const MAX_ITEM_BYTES: usize = 4 * 1024 * 1024;

/// Deepest nesting of JSON accepted in an item (`serde_json`'s own limit).
pub const MAX_DEPTH: usize = 128;

/// Read buffer.
const BUFFER: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    JsonArray,
    JsonLines,
    Csv,
}

impl Format {
    /// The format's name for people.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::JsonArray => "JSON array",
            Self::JsonLines => "JSON lines",
            Self::Csv => "CSV",
        }
    }
}

/// One item as read, before interpretation.
#[derive(Debug)]
pub struct RawItem {
    /// 1-based: array element, the line a JSON line starts on, or CSV row (after the header).
    pub position: usize,
    /// Well-formed, or why the item was skipped (too large, nested too deep).
    pub value: Result<Value, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the file is empty")]
    Empty,
    #[error("this is not an Apify export (JSON array, JSON lines or CSV): it starts with {0:?}")]
    NotAnExport(String),
    #[error("CSV without a usable header row: {0}")]
    BadCsv(String),
    #[error(
        "the file is damaged at line {line} (byte {byte}): {reason}; nothing of it is imported \
         ({items} items before that point were readable)"
    )]
    Damaged { line: u64, byte: u64, reason: String, items: usize },
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
}

/// Splits `bytes` into raw items, detecting the format (tests and small inputs).
///
/// # Errors
/// As [`read_export`].
pub fn read_items(bytes: &[u8]) -> Result<(Format, Vec<RawItem>), ExportError> {
    let mut items = Vec::new();
    let format = read_export(bytes, MAX_ITEM_BYTES, |item| items.push(item))?;
    Ok((format, items))
}

/// Streams the export in `reader` item by item into `each`, detecting the format; returns it.
///
/// # Errors
/// When the file as a whole is not an export, or is damaged (see the module's rule): items
/// already handed over must then be discarded by the caller.
pub fn read_export<R: Read>(
    reader: R,
    max_item: usize,
    mut each: impl FnMut(RawItem),
) -> Result<Format, ExportError> {
    let mut scan = Scanner { r: BufReader::with_capacity(BUFFER, reader), line: 1, byte: 0 };
    if scan.r.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        scan.r.consume(3);
        scan.byte = 3;
    }
    let head = scan.r.fill_buf()?;
    if head.is_empty() {
        return Err(ExportError::Empty);
    }
    let first = head.iter().position(|b| !b.is_ascii_whitespace());
    match first.map(|i| head[i]) {
        // JSON, or whitespace for a whole buffer: the scanner decides.
        Some(b'[' | b'{') | None => {}
        Some(_) if looks_like_csv_header(head) => {
            return csv_rows(scan.r, max_item, each).map(|()| Format::Csv);
        }
        Some(_) => {
            let start = first.unwrap_or(0);
            let head: String = String::from_utf8_lossy(&head[start..head.len().min(start + 24)])
                .chars()
                .map(|c| if c.is_control() { '.' } else { c })
                .collect();
            return Err(ExportError::NotAnExport(head));
        }
    }
    scan.skip_ws()?;
    match scan.peek()? {
        None => Err(ExportError::Empty),
        Some(b'[') => {
            scan.bump();
            scan.array(max_item, &mut each)?;
            Ok(Format::JsonArray)
        }
        Some(b'{') => {
            scan.lines(max_item, &mut each)?;
            Ok(Format::JsonLines)
        }
        Some(_) => Err(ExportError::NotAnExport("whitespace, then something else".into())),
    }
}

/// How a scanned value turned out.
enum Scanned {
    /// Its bytes are in the buffer.
    Whole,
    /// Skipped, with the reason.
    Skipped(String),
}

/// Finds where each JSON value ends (strings, escapes and nesting tracked byte by byte), so
/// that one value at a time is parsed and a value too large is never held.
struct Scanner<R> {
    r: BufReader<R>,
    /// 1-based line of the next byte.
    line: u64,
    /// Offset of the next byte in the file.
    byte: u64,
}

impl<R: Read> Scanner<R> {
    fn peek(&mut self) -> std::io::Result<Option<u8>> {
        Ok(self.r.fill_buf()?.first().copied())
    }

    fn bump(&mut self) {
        if self.peek().ok().flatten() == Some(b'\n') {
            self.line += 1;
        }
        self.r.consume(1);
        self.byte += 1;
    }

    fn skip_ws(&mut self) -> std::io::Result<()> {
        loop {
            let buf = self.r.fill_buf()?;
            if buf.is_empty() {
                return Ok(());
            }
            let n = buf.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(buf.len());
            self.line += newlines(&buf[..n]);
            self.byte += n as u64;
            let all = n == buf.len();
            self.r.consume(n);
            if !all {
                return Ok(());
            }
        }
    }

    fn damaged(at: (u64, u64), reason: String, items: usize) -> ExportError {
        ExportError::Damaged { line: at.0, byte: at.1, reason, items }
    }

    /// Scans the value starting at the next byte into `out` (left empty when it is skipped).
    /// `Ok(None)` when the file ends inside it.
    fn value(&mut self, out: &mut Vec<u8>, max_item: usize) -> std::io::Result<Option<Scanned>> {
        out.clear();
        let mut depth = 0usize;
        let mut deepest = 0usize;
        let mut in_string = false;
        let mut escape = false;
        let mut started = false;
        let mut scalar = false;
        let mut size = 0usize;
        loop {
            let buf = self.r.fill_buf()?;
            if buf.is_empty() {
                // A bare scalar may end with the file; anything else is cut off.
                return Ok((scalar && !in_string).then_some(Scanned::Whole));
            }
            let mut end = None;
            for (i, &b) in buf.iter().enumerate() {
                if !started {
                    started = true;
                    match b {
                        b'{' | b'[' => depth = 1,
                        b'"' => in_string = true,
                        _ => scalar = true,
                    }
                    deepest = depth;
                    continue;
                }
                if in_string {
                    if escape {
                        escape = false;
                    } else if b == b'\\' {
                        escape = true;
                    } else if b == b'"' {
                        in_string = false;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    continue;
                }
                if scalar {
                    if b.is_ascii_whitespace() || matches!(b, b',' | b']' | b'}') {
                        end = Some(i);
                        break;
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => {
                        depth += 1;
                        deepest = deepest.max(depth);
                    }
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let n = end.unwrap_or(buf.len());
            size += n;
            if size <= max_item {
                out.extend_from_slice(&buf[..n]);
            } else if !out.is_empty() {
                *out = Vec::new();
            }
            self.line += newlines(&buf[..n]);
            self.byte += n as u64;
            self.r.consume(n);
            if end.is_some() {
                return Ok(Some(if size > max_item {
                    Scanned::Skipped(format!("item is larger than {max_item} bytes"))
                } else if deepest > MAX_DEPTH {
                    out.clear();
                    Scanned::Skipped(format!("item is nested deeper than {MAX_DEPTH} levels"))
                } else {
                    Scanned::Whole
                }));
            }
        }
    }

    /// Scans and parses one item starting at the next byte.
    fn item(
        &mut self,
        out: &mut Vec<u8>,
        max_item: usize,
        position: usize,
        items: usize,
    ) -> Result<RawItem, ExportError> {
        let at = (self.line, self.byte);
        let value = match self.value(out, max_item)? {
            None => {
                return Err(Self::damaged(at, format!("the file is cut off inside item {position}"), items));
            }
            Some(Scanned::Skipped(reason)) => Err(reason),
            Some(Scanned::Whole) => match serde_json::from_slice(out) {
                Ok(value) => Ok(value),
                Err(e) => {
                    return Err(Self::damaged(at, format!("item {position} is not valid JSON ({e})"), items));
                }
            },
        };
        Ok(RawItem { position, value })
    }

    /// Elements of a JSON array (after its `[`).
    fn array(&mut self, max_item: usize, each: &mut impl FnMut(RawItem)) -> Result<(), ExportError> {
        let mut out = Vec::new();
        let mut items = 0;
        loop {
            self.skip_ws()?;
            match self.peek()? {
                Some(b']') => {
                    self.bump();
                    break;
                }
                None => {
                    let at = (self.line, self.byte);
                    return Err(Self::damaged(at, "the array is cut off (no closing ])".into(), items));
                }
                _ => {}
            }
            let item = self.item(&mut out, max_item, items + 1, items)?;
            items += 1;
            each(item);
            self.skip_ws()?;
            let at = (self.line, self.byte);
            match self.peek()? {
                Some(b',') => self.bump(),
                Some(b']') => {
                    self.bump();
                    break;
                }
                None => return Err(Self::damaged(at, "the array is cut off (no closing ])".into(), items)),
                Some(_) => {
                    return Err(Self::damaged(at, format!("expected , or ] after item {items}"), items));
                }
            }
        }
        self.skip_ws()?;
        if self.peek()?.is_some() {
            let at = (self.line, self.byte);
            return Err(Self::damaged(at, "more data after the array's closing ]".into(), items));
        }
        Ok(())
    }

    /// JSON values one after another: one per line, or pretty-printed over several.
    fn lines(&mut self, max_item: usize, each: &mut impl FnMut(RawItem)) -> Result<(), ExportError> {
        let mut out = Vec::new();
        let mut items = 0;
        loop {
            self.skip_ws()?;
            if self.peek()?.is_none() {
                return Ok(());
            }
            let line = usize::try_from(self.line).unwrap_or(usize::MAX);
            let mut item = self.item(&mut out, max_item, line, items)?;
            item.position = line;
            items += 1;
            each(item);
        }
    }
}

fn newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// A reader that fails once more than its budget has been read since the last `reset`: bounds
/// what the CSV reader buffers for one row.
struct Budgeted<R> {
    inner: R,
    left: std::rc::Rc<std::cell::Cell<usize>>,
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.left.get();
        if left == 0 {
            return Err(std::io::Error::other("row too large"));
        }
        let len = buf.len().min(left);
        let n = self.inner.read(&mut buf[..len])?;
        self.left.set(left - n);
        Ok(n)
    }
}

fn csv_rows<R: Read>(
    reader: BufReader<R>,
    max_item: usize,
    mut each: impl FnMut(RawItem),
) -> Result<(), ExportError> {
    let left = std::rc::Rc::new(std::cell::Cell::new(max_item + BUFFER));
    let mut reader =
        csv::ReaderBuilder::new().flexible(true).from_reader(Budgeted { inner: reader, left: left.clone() });
    let headers: Vec<String> = reader
        .byte_headers()
        .map_err(|e| ExportError::BadCsv(e.to_string()))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_owned())
        .collect();
    let mut record = csv::ByteRecord::new();
    let mut items = 0;
    loop {
        left.set(max_item + BUFFER);
        let at = reader.position().clone();
        let damaged =
            |reason: String| ExportError::Damaged { line: at.line(), byte: at.byte(), reason, items };
        match reader.read_byte_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) && left.get() == 0 => {
                return Err(damaged(format!("row {} is larger than {max_item} bytes", items + 1)));
            }
            Err(e) => return Err(damaged(format!("row {} is not readable CSV: {e}", items + 1))),
        }
        let value = row_to_item(&headers, &record).map_err(|e| damaged(format!("row {}: {e}", items + 1)))?;
        items += 1;
        each(RawItem { position: items, value: Ok(value) });
    }
}

fn looks_like_csv_header(bytes: &[u8]) -> bool {
    let line_end = bytes.iter().position(|b| *b == b'\n').unwrap_or(bytes.len()).min(64 * 1024);
    let Ok(header) = std::str::from_utf8(&bytes[..line_end]) else { return false };
    let known =
        ["id", "url", "shortCode", "ownerUsername", "text", "username", "caption", "postUrl", "timestamp"];
    header.contains(',')
        && header.split(',').any(|h| {
            let h = h.trim().trim_matches('"');
            known.contains(&h) || h.contains('/')
        })
}

fn row_to_item(headers: &[String], record: &csv::ByteRecord) -> Result<Value, String> {
    let mut root = Map::new();
    for (header, field) in headers.iter().zip(record.iter()) {
        if field.is_empty() {
            continue;
        }
        let text = std::str::from_utf8(field)
            .map_err(|_| format!("column {header:?} is not UTF-8 text (save the file as UTF-8)"))?;
        insert_path(&mut root, header, Value::String(text.to_owned()));
    }
    Ok(arrays_from_indices(Value::Object(root)))
}

fn insert_path(root: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts = path.split('/').peekable();
    let mut node = root;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            node.insert(part.to_owned(), value);
            return;
        }
        let entry = node.entry(part.to_owned()).or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        node = next;
    }
}

/// Objects whose keys are all indices (`"0"`, `"1"`, ...) become arrays, recursively.
fn arrays_from_indices(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let numeric = !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok());
            if numeric {
                let mut entries: Vec<(usize, Value)> = map
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.parse().ok()?, arrays_from_indices(v))))
                    .collect();
                entries.sort_by_key(|(i, _)| *i);
                Value::Array(entries.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(map.into_iter().map(|(k, v)| (k, arrays_from_indices(v))).collect())
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(items: &[RawItem]) -> usize {
        items.iter().filter(|i| i.value.is_ok()).count()
    }

    fn damage(bytes: &[u8]) -> (u64, u64, usize, String) {
        match read_items(bytes) {
            Err(ExportError::Damaged { line, byte, items, reason }) => (line, byte, items, reason),
            other => panic!("expected damage, got {other:?}"),
        }
    }

    #[test]
    fn a_cut_off_array_is_damaged_where_it_ends() {
        let (line, byte, items, reason) = damage(b"[{\"a\":1},\n {\"b\":2},\n {\"c\":");
        assert_eq!((line, byte, items), (3, 21, 2));
        assert!(reason.contains("cut off inside item 3"), "{reason}");
        let (_, _, items, reason) = damage(b"[{\"a\":1}, {\"b\":2}");
        assert_eq!(items, 2);
        assert!(reason.contains("no closing ]"), "{reason}");
        let (_, byte, _, reason) = damage(b"[{\"a\":1} {\"b\":2}]");
        assert_eq!(byte, 9);
        assert!(reason.contains("expected , or ] after item 1"), "{reason}");
    }

    #[test]
    fn a_broken_json_line_damages_the_file_and_names_its_line() {
        let (line, _, items, reason) = damage(b"\xEF\xBB\xBF{\"a\":1}\n\n{\"b\": tru}\n{\"c\":[1,2]}\r\n");
        assert_eq!((line, items), (3, 1));
        assert!(reason.contains("item 3 is not valid JSON"), "{reason}");
    }

    #[test]
    fn jsonl_with_a_bom_blank_lines_and_crlf() {
        let (format, items) =
            read_items(b"\xEF\xBB\xBF{\"a\":1}\n\n{\"b\":\"x}{\"}\r\n{\"c\":[1,2]}").expect("export");
        assert_eq!(format, Format::JsonLines);
        assert_eq!(ok(&items), 3);
        assert_eq!(items.iter().map(|i| i.position).collect::<Vec<_>>(), [1, 3, 4]);
        assert_eq!(items[1].value.as_ref().expect("item")["b"], "x}{");
    }

    #[test]
    fn pretty_printed_objects_are_items_too() {
        let (format, items) =
            read_items(b"{\n  \"a\": {\"b\": [1, 2]}\n}\n{\n  \"c\": \"\\\"\"\n}\n").expect("export");
        assert_eq!(format, Format::JsonLines);
        assert_eq!(ok(&items), 2);
        assert_eq!(items[1].position, 4);
    }

    #[test]
    fn an_item_too_large_or_too_deep_is_skipped_and_the_next_one_read() {
        let big = format!("[{{\"text\":\"{}\"}}, {{\"a\":1}}]", "x".repeat(1000));
        let mut items = Vec::new();
        read_export(big.as_bytes(), 100, |i| items.push(i)).expect("export");
        assert!(items[0].value.as_ref().expect_err("too large").contains("larger than 100 bytes"));
        assert_eq!(items[1].value.as_ref().expect("next"), &serde_json::json!({"a": 1}));
        let deep = format!("[{}{}, {{\"a\":1}}]", "[".repeat(100_000), "]".repeat(100_000));
        let (_, items) = read_items(deep.as_bytes()).expect("export");
        assert!(items[0].value.as_ref().expect_err("too deep").contains("nested deeper"));
        assert_eq!(ok(&items), 1);
    }

    #[test]
    fn csv_columns_are_unflattened() {
        let csv = "\u{feff}\"id\",\"latestComments/0/ownerUsername\",\"latestComments/1/text\",\"caption\"\n\
                   \"1\",\"alice\",\"multi\nline\",\"\"\n";
        let (format, items) = read_items(csv.as_bytes()).expect("export");
        assert_eq!(format, Format::Csv);
        let v = items[0].value.as_ref().expect("row");
        assert_eq!(v["latestComments"][0]["ownerUsername"], "alice");
        assert_eq!(v["latestComments"][1]["text"], "multi\nline");
        assert!(v.get("caption").is_none(), "empty cells are absent");
    }

    #[test]
    fn a_csv_row_that_is_not_utf8_or_too_large_damages_the_file() {
        let mut csv = b"id,text\n1,ok\n2,".to_vec();
        csv.extend_from_slice(&[0xff, 0xfe]);
        csv.extend_from_slice(b"\n");
        let (line, _, items, reason) = damage(&csv);
        assert_eq!((line, items), (3, 1));
        assert!(reason.contains("not UTF-8"), "{reason}");
        let huge = format!("id,text\n1,\"{}\"\n", "y".repeat(2 * BUFFER + 10));
        let result = read_export(huge.as_bytes(), 100, |_| {});
        assert!(
            matches!(&result, Err(ExportError::Damaged { reason, .. }) if reason.contains("larger than 100 bytes")),
            "{result:?}"
        );
    }

    #[test]
    fn other_files_are_not_exports() {
        assert!(matches!(read_items(b"\x89PNG\r\n\x1a\n...."), Err(ExportError::NotAnExport(_))));
        assert!(matches!(read_items(b"<!doctype html><html>"), Err(ExportError::NotAnExport(_))));
        assert!(matches!(read_items(b"   \n"), Err(ExportError::Empty)));
    }
}
