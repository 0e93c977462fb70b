//! Reading Apify dataset exports: a JSON array, JSON lines, or CSV with flattened columns
//! (`latestComments/0/ownerUsername`), with or without a UTF-8 BOM. Items are yielded one by
//! one with their position, so a broken item is reported and the rest still count.

use serde_json::{Map, Value};

/// Largest single item accepted (a JSON line or array element).
pub const MAX_ITEM_BYTES: usize = 16 * 1024 * 1024;

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
    /// 1-based: array element, line or CSV row (after the header).
    pub position: usize,
    pub value: Result<Value, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the file is empty")]
    Empty,
    #[error("this is not an Apify export (JSON array, JSON lines or CSV): it starts with {0:?}")]
    NotAnExport(String),
    #[error("the file is not UTF-8 text: {0}")]
    NotUtf8(String),
    #[error("CSV without a usable header row: {0}")]
    BadCsv(String),
}

/// Splits `bytes` into raw items, detecting the format.
///
/// # Errors
/// When the file as a whole is not an export.
pub fn read_items(bytes: &[u8]) -> Result<(Format, Vec<RawItem>), ExportError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).ok_or(ExportError::Empty)?;
    match bytes[start] {
        b'[' => Ok((Format::JsonArray, json_array(&bytes[start..]))),
        b'{' => Ok((Format::JsonLines, json_lines(bytes))),
        _ if looks_like_csv_header(bytes) => Ok((Format::Csv, csv_rows(bytes)?)),
        _ => {
            let head: String = String::from_utf8_lossy(&bytes[start..bytes.len().min(start + 24)])
                .chars()
                .map(|c| if c.is_control() { '.' } else { c })
                .collect();
            Err(ExportError::NotAnExport(head))
        }
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

/// Elements of a JSON array, read one at a time; a syntax error ends the array (nothing after
/// it can be trusted) and is reported as one broken item.
fn json_array(bytes: &[u8]) -> Vec<RawItem> {
    let mut items = Vec::new();
    let mut pos = 1; // after '['
    let skip_ws = |p: &mut usize| {
        while *p < bytes.len() && bytes[*p].is_ascii_whitespace() {
            *p += 1;
        }
    };
    loop {
        skip_ws(&mut pos);
        match bytes.get(pos) {
            Some(b']') => return items,
            None => {
                items.push(RawItem {
                    position: items.len() + 1,
                    value: Err("the array is cut off (no closing ])".into()),
                });
                return items;
            }
            _ => {}
        }
        let mut stream = serde_json::Deserializer::from_slice(&bytes[pos..]).into_iter::<Value>();
        let position = items.len() + 1;
        match stream.next() {
            Some(Ok(value)) => {
                let used = stream.byte_offset();
                let value = if used > MAX_ITEM_BYTES {
                    Err(format!("item is larger than {MAX_ITEM_BYTES} bytes"))
                } else {
                    Ok(value)
                };
                items.push(RawItem { position, value });
                pos += used;
            }
            Some(Err(e)) => {
                items.push(RawItem {
                    position,
                    value: Err(format!("malformed JSON ({e}); the rest of the file is skipped")),
                });
                return items;
            }
            None => return items,
        }
        skip_ws(&mut pos);
        match bytes.get(pos) {
            Some(b',') => pos += 1,
            Some(b']') => return items,
            _ => {
                items.push(RawItem {
                    position: items.len() + 1,
                    value: Err("malformed JSON array: expected , or ]".into()),
                });
                return items;
            }
        }
    }
}

/// One JSON value per line; blank lines are ignored. A whole file holding a single
/// pretty-printed object is read as one item.
fn json_lines(bytes: &[u8]) -> Vec<RawItem> {
    if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        return vec![RawItem { position: 1, value: Ok(value) }];
    }
    let mut items = Vec::new();
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value = if line.len() > MAX_ITEM_BYTES {
            Err(format!("line is longer than {MAX_ITEM_BYTES} bytes"))
        } else {
            serde_json::from_slice(line).map_err(|e| format!("malformed JSON line: {e}"))
        };
        items.push(RawItem { position: n + 1, value });
    }
    items
}

fn csv_rows(bytes: &[u8]) -> Result<Vec<RawItem>, ExportError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let headers: Vec<String> = reader
        .byte_headers()
        .map_err(|e| ExportError::BadCsv(e.to_string()))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_owned())
        .collect();
    let mut items = Vec::new();
    for (n, record) in reader.byte_records().enumerate() {
        let value = match record {
            Err(e) => Err(format!("unreadable CSV row: {e}")),
            Ok(record) => row_to_item(&headers, &record),
        };
        items.push(RawItem { position: n + 1, value });
    }
    Ok(items)
}

fn row_to_item(headers: &[String], record: &csv::ByteRecord) -> Result<Value, String> {
    let mut root = Map::new();
    for (header, field) in headers.iter().zip(record.iter()) {
        if field.is_empty() {
            continue;
        }
        let text = std::str::from_utf8(field).map_err(|_| format!("column {header:?} is not valid UTF-8"))?;
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

    #[test]
    fn json_array_with_a_truncated_tail_keeps_what_came_before() {
        let (format, items) = read_items(br#"[{"a":1}, {"b":2}, {"c":"#).expect("export");
        assert_eq!(format, Format::JsonArray);
        assert_eq!(ok(&items), 2);
        assert_eq!(items.len(), 3);
    }

    #[test]
    fn jsonl_with_a_bom_and_a_broken_line() {
        let (format, items) =
            read_items(b"\xEF\xBB\xBF{\"a\":1}\n\n{broken\n{\"b\":[1,2]}\r\n").expect("export");
        assert_eq!(format, Format::JsonLines);
        assert_eq!(ok(&items), 2);
        assert_eq!(items[1].position, 3);
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
    fn non_utf8_csv_rows_are_rejected_one_by_one() {
        let mut csv = b"id,text\n1,ok\n2,".to_vec();
        csv.extend_from_slice(&[0xff, 0xfe]);
        csv.extend_from_slice(b"\n");
        let (_, items) = read_items(&csv).expect("export");
        assert_eq!(ok(&items), 1);
        assert!(items[1].value.as_ref().expect_err("bad row").contains("UTF-8"));
    }

    #[test]
    fn other_files_are_not_exports() {
        assert!(matches!(read_items(b"\x89PNG\r\n\x1a\n...."), Err(ExportError::NotAnExport(_))));
        assert!(matches!(read_items(b"<!doctype html><html>"), Err(ExportError::NotAnExport(_))));
        assert!(matches!(read_items(b"   \n"), Err(ExportError::Empty)));
    }
}
