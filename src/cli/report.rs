//! The audience report as a readable table.

use std::fmt::Write as _;

use crate::insights::snapshot::{FlagShare, Snapshot};
use crate::vision::estimate::Breakdown;

fn pct(v: f64) -> String {
    format!("{:5.1}%", v * 100.0)
}

fn ci(c: [f64; 2]) -> String {
    format!("[{:.1}-{:.1}]", c[0] * 100.0, c[1] * 100.0)
}

fn breakdown(out: &mut String, title: &str, b: &Breakdown) {
    let _ = writeln!(out, "\n{title} (n = {}, {:.0}% of classified pictures)", b.n, b.coverage * 100.0);
    let corrected = b.corrected.is_some();
    let _ = writeln!(
        out,
        "  {:<10} {:>6}  {:>6} {:<13}{}",
        "",
        "count",
        "raw",
        "95% CI",
        if corrected { "  corrected  95% CI" } else { "" }
    );
    for s in &b.raw {
        let mut line = format!("  {:<10} {:>6}  {} {:<13}", s.class, s.count, pct(s.share), ci(s.ci95));
        if let Some(c) = b.corrected.as_ref().and_then(|c| c.iter().find(|c| c.class == s.class)) {
            let _ = write!(line, "  {}     {}", pct(c.share), ci(c.ci95));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn flag(out: &mut String, name: &str, f: &FlagShare) {
    if f.n == 0 {
        let _ = writeln!(out, "  {name:<10} unknown (no source gave it)");
    } else {
        let _ = writeln!(
            out,
            "  {name:<10} {} {} of {} known ({:.0}% coverage)",
            pct(f.share),
            ci(f.ci95),
            f.n,
            f.coverage * 100.0
        );
    }
}

#[must_use]
pub fn render(snap: &Snapshot) -> String {
    let mut out = String::new();
    let audience = &snap.audience;
    let unavailable = &snap.sample.unavailable;
    let _ = writeln!(
        out,
        "Audience of @{} (analysis {}, {})",
        snap.handle,
        snap.analysis_id,
        snap.generated_at.format("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(
        out,
        "  {} posts, {} comments, {} unique commenters{}",
        snap.sample.posts_covered,
        snap.sample.comments,
        snap.sample.unique_commenters,
        match (snap.sample.first_comment_at, snap.sample.last_comment_at) {
            (Some(f), Some(l)) =>
                format!(", comments from {} to {}", f.format("%Y-%m-%d"), l.format("%Y-%m-%d")),
            _ => String::new(),
        }
    );
    let _ = writeln!(
        out,
        "  pictures classified: {} of {} ({} private not classified, {} expired, {} unreadable or not pictures, {} failed, {} without a picture)",
        snap.sample.pictures_classified,
        snap.sample.unique_commenters,
        unavailable.private,
        unavailable.expired,
        unavailable.rejected,
        unavailable.failed,
        unavailable.no_picture
    );
    let _ = writeln!(out, "\nProfile types (n = {})", audience.classified);
    for t in &audience.profile_types {
        let _ = writeln!(out, "  {:<15} {:>4}  {} {}", t.class, t.count, pct(t.share), ci(t.ci95));
    }
    breakdown(&mut out, "Gender", &audience.gender);
    breakdown(&mut out, "Age bracket", &audience.age_brackets);
    let _ = writeln!(out, "\nAccount types");
    flag(&mut out, "private", &snap.account_types.private);
    flag(&mut out, "verified", &snap.account_types.verified);
    flag(&mut out, "business", &snap.account_types.business);
    let _ = writeln!(out, "\nPer post");
    for p in &snap.per_post {
        let genders = match (p.female, p.male) {
            (Some(f), Some(m)) => format!("{f} female / {m} male of {} classified", p.classified),
            _ => format!("{} classified (too few for a breakdown)", p.classified),
        };
        let _ = writeln!(
            out,
            "  {:<45} {:>4} comments {:>4} commenters  {genders}",
            p.url.as_deref().unwrap_or(&p.ig_post_id),
            p.comments,
            p.unique_commenters,
        );
    }
    let _ = writeln!(out, "\nModel: {}", snap.model);
    match &audience.calibration {
        Some(c) => {
            let _ = writeln!(out, "Corrected with the calibration of {} ({})", c.model, c.dataset);
        }
        None => {
            let _ = writeln!(out, "No calibration: shares are not corrected");
        }
    }
    for note in &audience.notes {
        let _ = writeln!(out, "Note: {note}");
    }
    let _ = writeln!(out, "Cost of this analysis: ${:.4}", snap.cost.total_usd);
    if let Some(g) = &snap.cost.gemini {
        let _ = writeln!(
            out,
            "Gemini ({}): {} pictures sent in {} requests, {} labelled, {} abstained; ${:.6}{}",
            snap.classifier,
            g.sent,
            g.requests,
            g.labelled,
            g.abstained,
            g.cost_usd,
            g.budget_usd.map_or(String::new(), |b| format!(" of a ${b:.2} budget"))
        );
        for note in &g.notes {
            let _ = writeln!(out, "Note: {note}");
        }
    }
    if !snap.no_person_kinds.is_empty() {
        let kinds: Vec<String> = snap.no_person_kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(out, "Pictures without a person show: {}", kinds.join(", "));
    }
    out
}
