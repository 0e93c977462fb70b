//! The audience report as a readable table. It says only what happened: a share nobody could
//! estimate is "no estimate" with the reason, a correction that was not made is not claimed,
//! and the coverage funnel comes first so the reader sees whom the shares describe.

use std::fmt::Write as _;

use crate::insights::funnel::plural;
use crate::insights::snapshot::{FlagShare, Funnel, Snapshot};
use crate::vision::estimate::Breakdown;

fn pct(v: f64) -> String {
    format!("{:5.1}%", v * 100.0)
}

fn ci(c: [f64; 2]) -> String {
    format!("[{:.1}-{:.1}]", c[0] * 100.0, c[1] * 100.0)
}

fn breakdown(out: &mut String, title: &str, b: &Breakdown) {
    if b.raw.is_empty() {
        let why = b.no_estimate.as_deref().unwrap_or("no estimate");
        let _ = writeln!(out, "\n{title}: {why}");
        return;
    }
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

/// `reason n` items joined with commas, leaving out zeros.
fn counted(parts: &[(usize, &str)]) -> String {
    parts.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!("{n} {what}")).collect::<Vec<_>>().join(", ")
}

/// The funnel in lines, as the report and the progress of `analyze` print it.
#[must_use]
pub fn funnel_lines(funnel: &Funnel, handle: &str) -> Vec<String> {
    let c = &funnel.comments;
    let a = &c.set_aside;
    let mut lines = Vec::new();
    let mut input = format!("{} in the input", c.in_input);
    if c.stored_earlier > 0 {
        let _ = write!(input, " and {} stored earlier on these posts", c.stored_earlier);
    }
    let aside = counted(&[
        (a.owner, &format!("by @{handle} itself or a co-author")),
        (a.foreign, "on other accounts' posts"),
        (a.duplicate, "repeated"),
        (a.rejected, "unreadable"),
        (a.suppressed, "by people erased at their request"),
        (a.outside_posts, "on posts outside the covered ones"),
    ]);
    if aside.is_empty() {
        let _ = write!(input, "; none set aside; {} analysed", c.analysed);
    } else {
        let _ = write!(input, "; {} set aside ({aside}); {} analysed", a.total(), c.analysed);
    }
    lines.push(format!("Comments    {input}"));
    let p = &funnel.commenters;
    let m = &p.not_classified;
    lines.push(format!("Commenters  {} unique", p.unique));
    let mut link = format!("{:>6} with a picture link", p.with_picture);
    if m.no_picture > 0 {
        let _ = write!(link, " ({} without)", m.no_picture);
    }
    lines.push(link);
    let mut available = format!("{:>6} pictures available", p.picture_available);
    let missing = counted(&[
        (m.expired, "expired"),
        (m.private, "private, not downloaded"),
        (m.unreadable, "not pictures or unreadable"),
        (m.failed, "download failed"),
        (m.pending, "not downloaded yet"),
    ]);
    if !missing.is_empty() {
        let _ = write!(available, " ({missing})");
    }
    lines.push(available);
    let mut classified = format!("{:>6} classified", p.classified);
    if p.recognised_from_link > 0 {
        let _ = write!(
            classified,
            " ({} recognised from the link)",
            plural(p.recognised_from_link, "default avatar")
        );
    }
    if m.unclassified > 0 {
        let _ = write!(classified, "; {} downloaded but not classified", m.unclassified);
    }
    lines.push(classified);
    lines.push(format!(
        "{:>6} typed person; gender given for {}, age for {}",
        p.person, p.gender_given, p.age_given
    ));
    lines
}

fn what_was_analysed(out: &mut String, snap: &Snapshot) {
    let s = &snap.sample;
    let posts = match (s.posts_scope.as_deref(), s.posts_limit) {
        (Some("input"), _) => format!("{}: every post of the input", plural(s.posts_covered, "post")),
        (_, Some(limit)) => {
            format!("{}: the account's newest {} (its posts setting)", plural(s.posts_covered, "post"), limit)
        }
        _ => plural(s.posts_covered, "post"),
    };
    let mut line = format!("Posts       {posts}");
    if let (Some(f), Some(l)) = (s.first_post_at, s.last_post_at) {
        let _ = write!(line, ", posted {} to {}", f.format("%Y-%m-%d"), l.format("%Y-%m-%d"));
    }
    let _ = writeln!(out, "  {line}");
    let Some(funnel) = &s.funnel else {
        let _ = writeln!(out, "  Comments    {} analysed", s.comments);
        let _ = writeln!(out, "  Commenters  {} unique", s.unique_commenters);
        return;
    };
    for line in funnel_lines(funnel, &snap.handle) {
        let _ = writeln!(out, "  {line}");
    }
    if let (Some(f), Some(l)) = (s.first_comment_at, s.last_comment_at) {
        let _ = writeln!(out, "  Comments written {} to {}", f.format("%Y-%m-%d"), l.format("%Y-%m-%d"));
    }
    for note in funnel_notes(funnel, s.posts_scope.as_deref() == Some("input")) {
        let _ = writeln!(out, "  Note: {note}");
    }
}

/// What the reader should know about the funnel: expired links and what to do about them,
/// posts taken as the account's, records set aside for belonging to others.
#[must_use]
pub fn funnel_notes(f: &Funnel, imported: bool) -> Vec<String> {
    let mut notes = Vec::new();
    let expired = f.commenters.not_classified.expired;
    if expired > 0 {
        notes.push(if imported {
            format!(
                "{} had expired: Instagram's picture links last only days, and this export is older. \
                 Scrape the account again (`audiencelens analyze HANDLE`), or export it anew and import it at once",
                plural(expired, "picture link")
            )
        } else {
            format!(
                "{} expired before they were downloaded: run the analysis again to fetch fresh ones",
                plural(expired, "picture link")
            )
        });
    }
    let c = &f.comments;
    if c.posts_without_owner > 0 {
        notes.push(format!(
            "the input does not name the owner of {}: taken as this account's",
            plural(c.posts_without_owner, "post")
        ));
    }
    if c.posts_foreign > 0 || c.profiles_foreign > 0 {
        notes.push(format!(
            "set aside as other accounts' data: {}",
            counted(&[(c.posts_foreign, "posts"), (c.profiles_foreign, "profiles")])
        ));
    }
    if c.items_unreadable > 0 {
        notes.push(format!("{} of the input could not be read", plural(c.items_unreadable, "item")));
    }
    notes
}

#[must_use]
pub fn render(snap: &Snapshot) -> String {
    let mut out = String::new();
    let audience = &snap.audience;
    let _ = writeln!(
        out,
        "Audience of @{} (analysis {}, {})",
        snap.handle,
        snap.analysis_id,
        snap.generated_at.format("%Y-%m-%d %H:%M UTC")
    );
    what_was_analysed(&mut out, snap);
    if audience.profile_types.is_empty() {
        let why = audience.profile_types_no_estimate.as_deref().unwrap_or("no estimate");
        let _ = writeln!(out, "\nProfile types: {why}");
    } else {
        let _ = writeln!(out, "\nProfile types (n = {})", audience.classified);
        for t in &audience.profile_types {
            let _ = writeln!(out, "  {:<15} {:>4}  {} {}", t.class, t.count, pct(t.share), ci(t.ci95));
        }
    }
    breakdown(&mut out, "Gender", &audience.gender);
    breakdown(&mut out, "Age bracket", &audience.age_brackets);
    let _ = writeln!(out, "\nAccount types");
    flag(&mut out, "private", &snap.account_types.private);
    flag(&mut out, "verified", &snap.account_types.verified);
    flag(&mut out, "business", &snap.account_types.business);
    if !snap.per_post.is_empty() {
        let _ = writeln!(out, "\nPer post");
    }
    for p in &snap.per_post {
        let genders = match (p.female, p.male) {
            (Some(f), Some(m)) => format!("{f} female / {m} male of {} classified", p.classified),
            _ => format!("{} classified (too few for a breakdown)", p.classified),
        };
        let _ = writeln!(
            out,
            "  {:<45} {:>4} {:<8} {:>4} {:<10}  {genders}",
            p.url.as_deref().unwrap_or(&p.ig_post_id),
            p.comments,
            if p.comments == 1 { "comment" } else { "comments" },
            p.unique_commenters,
            if p.unique_commenters == 1 { "commenter" } else { "commenters" },
        );
    }
    if audience.classified == 0 {
        let _ = writeln!(out, "\nModel: none (no picture was classified)");
    } else {
        let _ = writeln!(out, "\nModel: {}", snap.model);
    }
    let corrected: Vec<&str> = [("gender", &audience.gender), ("age brackets", &audience.age_brackets)]
        .iter()
        .filter(|(_, b)| b.corrected.is_some())
        .map(|(name, _)| *name)
        .collect();
    if let (Some(c), false) = (&audience.calibration, corrected.is_empty()) {
        let _ = writeln!(
            out,
            "Corrected for the classifier's measured errors ({}) with the calibration of {} ({})",
            corrected.join(" and "),
            c.model,
            c.dataset
        );
    }
    for note in &audience.notes {
        let _ = writeln!(out, "Note: {note}");
    }
    let _ = writeln!(out, "Cost of this analysis: ${:.4}", snap.cost.total_usd);
    if let Some(g) = &snap.cost.gemini {
        let _ = writeln!(
            out,
            "Gemini ({}): {} sent in {}, {} labelled, {} abstained; ${:.6}{}",
            snap.classifier,
            plural(g.sent, "picture"),
            plural(g.requests, "request"),
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
