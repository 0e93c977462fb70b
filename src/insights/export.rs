//! CSV forms of a snapshot and of an account's commenters (pseudonymised unless asked).

use super::read::CommenterRow;
use super::snapshot::Snapshot;
use crate::privacy::PrivacyKey;
use crate::vision::estimate::{AudienceEstimate, Breakdown};

fn breakdown_rows(
    w: &mut csv::Writer<Vec<u8>>,
    weighting: &str,
    dimension: &str,
    b: &Breakdown,
) -> csv::Result<()> {
    for share in &b.raw {
        let corrected = b.corrected.as_ref().and_then(|c| c.iter().find(|x| x.class == share.class));
        w.write_record([
            weighting,
            dimension,
            share.class.as_str(),
            &b.n.to_string(),
            &format!("{:.4}", b.coverage),
            &share.count.to_string(),
            &format!("{:.4}", share.share),
            &format!("{:.4}", share.ci95[0]),
            &format!("{:.4}", share.ci95[1]),
            &corrected.map_or(String::new(), |c| format!("{:.4}", c.share)),
            &corrected.map_or(String::new(), |c| format!("{:.4}", c.ci95[0])),
            &corrected.map_or(String::new(), |c| format!("{:.4}", c.ci95[1])),
        ])?;
    }
    Ok(())
}

fn estimate_rows(w: &mut csv::Writer<Vec<u8>>, weighting: &str, e: &AudienceEstimate) -> csv::Result<()> {
    let n: usize = e.profile_types.iter().map(|s| s.count).sum();
    for s in &e.profile_types {
        w.write_record([
            weighting,
            "profile_type",
            &s.class,
            &n.to_string(),
            "1.0000",
            &s.count.to_string(),
            &format!("{:.4}", s.share),
            &format!("{:.4}", s.ci95[0]),
            &format!("{:.4}", s.ci95[1]),
            "",
            "",
            "",
        ])?;
    }
    breakdown_rows(w, weighting, "gender", &e.gender)?;
    breakdown_rows(w, weighting, "age_bracket", &e.age_brackets)
}

/// One row per share: weighting, dimension, class, n, coverage, count, share and interval,
/// corrected share and interval (empty when not corrected).
pub fn snapshot_csv(s: &Snapshot) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "weighting",
        "dimension",
        "class",
        "n",
        "coverage",
        "count",
        "share",
        "ci95_low",
        "ci95_high",
        "corrected_share",
        "corrected_ci95_low",
        "corrected_ci95_high",
    ])?;
    estimate_rows(&mut w, "commenter", &s.audience)?;
    estimate_rows(&mut w, "comment", &s.audience_by_comment)?;
    for (name, f) in [
        ("private", &s.account_types.private),
        ("verified", &s.account_types.verified),
        ("business", &s.account_types.business),
    ] {
        w.write_record([
            "commenter",
            "account_type",
            name,
            &f.n.to_string(),
            &format!("{:.4}", f.coverage),
            "",
            &format!("{:.4}", f.share),
            &format!("{:.4}", f.ci95[0]),
            &format!("{:.4}", f.ci95[1]),
            "",
            "",
            "",
        ])?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("writing CSV: {e}"))
}

/// Commenters as CSV; with a key, handles are replaced by pseudonyms.
pub fn commenters_csv(rows: &[CommenterRow], pseudonymise: Option<&PrivacyKey>) -> anyhow::Result<Vec<u8>> {
    commenters_csv_part(rows, pseudonymise, true)
}

/// One part of the commenters CSV (the first with the header), for streaming page by page.
///
/// # Errors
/// Only if writing to memory fails.
pub fn commenters_csv_part(
    rows: &[CommenterRow],
    pseudonymise: Option<&PrivacyKey>,
    header: bool,
) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    if header {
        write_commenters_header(&mut w)?;
    }
    write_commenter_rows(&mut w, rows, pseudonymise)?;
    w.into_inner().map_err(|e| anyhow::anyhow!("writing CSV: {e}"))
}

fn write_commenters_header(w: &mut csv::Writer<Vec<u8>>) -> csv::Result<()> {
    w.write_record([
        "commenter",
        "comments",
        "private",
        "verified",
        "business",
        "picture",
        "profile_type",
        "gender",
        "age_estimate",
        "abstain_reason",
        "source",
        "model",
    ])
}

fn write_commenter_rows(
    w: &mut csv::Writer<Vec<u8>>,
    rows: &[CommenterRow],
    pseudonymise: Option<&PrivacyKey>,
) -> csv::Result<()> {
    let flag = |b: Option<bool>| b.map_or(String::new(), |v| v.to_string());
    for r in rows {
        let who = match pseudonymise {
            Some(key) => key.pseudonym(&r.username),
            None => r.username.clone(),
        };
        w.write_record([
            who,
            r.comments.to_string(),
            flag(r.is_private),
            flag(r.is_verified),
            flag(r.is_business),
            r.picture_status.clone().unwrap_or_default(),
            r.profile_type.clone().unwrap_or_default(),
            r.gender.clone().unwrap_or_default(),
            r.age_estimate.map_or(String::new(), |a| format!("{a:.0}")),
            r.abstain_reason.clone().unwrap_or_default(),
            r.source.clone().unwrap_or_default(),
            r.model.clone().unwrap_or_default(),
        ])?;
    }
    Ok(())
}
