//! The vision benchmark's table: ours beside the reference, metric by metric, with ratios.

use std::collections::BTreeMap;

use super::{Metric, Prediction, ProfileType, Report, Unit, vision_eval};
use crate::vision::Bracket;

fn show(value: Option<f64>, unit: Unit) -> String {
    match (value, unit) {
        (None, _) => "-".to_owned(),
        (Some(v), Unit::Share) => format!("{:.1} %", 100.0 * v),
        (Some(v), Unit::Years) => format!("{v:.2} y"),
        (Some(v), Unit::Count) => format!("{v:.0}"),
    }
}

fn row(name: &str, reference: &str, ours: &str, note: &str) {
    println!("{name:<46} {reference:>12} {ours:>12}  {note}");
}

/// Rows: true bracket; columns: the bracket given (faces with an exact age).
fn print_confusion(matrix: &[[usize; 7]; 7]) {
    if matrix.iter().flatten().all(|&n| n == 0) {
        return;
    }
    println!();
    print!("{:<24}", "true \\ given (ours)");
    for b in Bracket::ALL {
        print!("{:>7}", b.label());
    }
    println!("{:>8}", "right");
    for (b, counts) in Bracket::ALL.iter().zip(matrix) {
        let total: usize = counts.iter().sum();
        if total == 0 {
            continue;
        }
        print!("{:<24}", format!("{} (n={total})", b.label()));
        for n in counts {
            print!("{n:>7}");
        }
        println!("{:>7.1} %", 100.0 * counts[b.index()] as f64 / total as f64);
    }
}

/// Pictures labelled with a category (pictures without a person): the share given a face.
fn print_categories(
    ours: &BTreeMap<String, (usize, usize)>,
    reference: Option<&BTreeMap<String, (usize, usize)>>,
) {
    if ours.is_empty() {
        return;
    }
    println!();
    row(
        "category (n): typed person or group",
        if reference.is_some() { "reference" } else { "" },
        "ours",
        "",
    );
    let share = |(n, k): (usize, usize)| format!("{k}/{n} {:.1} %", 100.0 * k as f64 / n.max(1) as f64);
    let (mut n, mut k) = (0, 0);
    for (category, &counts) in ours {
        n += counts.0;
        k += counts.1;
        let r = reference.and_then(|r| r.get(category)).map_or(String::new(), |&c| share(c));
        row(&format!("  {category} ({})", counts.0), &r, &share(counts), "");
    }
    let r = reference
        .as_ref()
        .map_or(String::new(), |r| share(r.values().fold((0, 0), |a, c| (a.0 + c.0, a.1 + c.1))));
    row(&format!("all categories ({n})"), &r, &share((n, k)), "");
}

impl Report<'_> {
    fn ours(&self) -> BTreeMap<String, Prediction> {
        self.pictures
            .iter()
            .zip(self.outcomes)
            .map(|(p, o)| {
                let prediction = o.as_ref().ok().map_or(Prediction::default(), |r| Prediction {
                    faces: r.face_count,
                    gender: r.gender.map(|g| self.label_settings.forced_gender(g.p_male)),
                    age: r.age.map(|a| f64::from(a.years)),
                    bracket: r.bracket(),
                });
                (p.name.clone(), prediction)
            })
            .collect()
    }

    pub(super) fn print(&self) {
        let has_ref = !self.reference.is_empty();
        let ref_rate = has_ref.then(|| super::median(self.reference.iter().map(|r| r.throughput).collect()));
        println!();
        row("metric", if has_ref { "reference" } else { "" }, "ours", "");
        let speed = |v: f64| format!("{v:.1}");
        let ratio = ref_rate.map_or(String::new(), |r| format!("ours/reference {:.2}x", self.one_thread / r));
        row(
            "throughput, 1 thread (pictures/s)",
            &ref_rate.map_or("-".into(), speed),
            &speed(self.one_thread),
            &ratio,
        );
        if self.rates.len() > 1 {
            let list = |v: &[f64]| v.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(" ");
            let refs: Vec<f64> = self.reference.iter().map(|r| r.throughput).collect();
            println!("  rounds (median shown): reference [{}], ours [{}]", list(&refs), list(&self.rates));
        }
        row(
            &format!("throughput, {} threads (pictures/s)", self.threads),
            "-",
            &speed(self.all_threads),
            &format!("scaling {:.2}x over 1 thread", self.all_threads / self.one_thread),
        );
        let t = &self.times;
        let ms = |d: std::time::Duration, n: u32| 1000.0 * d.as_secs_f64() / f64::from(n.max(1));
        println!(
            "  ours, ms per picture: decode {:.2}, avatar {:.3}, detect {:.2}, verify {:.2}; per face ({} faces): chips {:.3}, gender {:.2}, age {:.2}",
            ms(t.decode, t.pictures),
            ms(t.avatar, t.pictures),
            ms(t.detect, t.pictures),
            ms(t.verify, t.pictures),
            t.faces,
            ms(t.chips, t.faces),
            ms(t.gender, t.faces),
            ms(t.age, t.faces),
        );
        self.print_types();
        if let Some(labels) = self.labels {
            let ours = self.ours();
            let ours_m = vision_eval::evaluate(&ours, labels);
            let ref_m: Vec<Metric> = self
                .reference
                .first()
                .map(|r| vision_eval::evaluate(&r.predictions, labels))
                .unwrap_or_default();
            println!();
            for m in &ours_m {
                let r = ref_m.iter().find(|x| x.name == m.name).map_or("-".into(), |x| show(x.value, x.unit));
                row(&m.name, if has_ref { &r } else { "" }, &show(m.value, m.unit), "");
            }
            if let Some(reference) = self.reference.first() {
                let (o, r) = vision_eval::same_images(&ours, &reference.predictions, labels);
                println!();
                for (a, b) in o.iter().zip(&r) {
                    row(&a.name, &show(b.value, b.unit), &show(a.value, a.unit), "");
                }
            }
            self.print_abstention(labels);
            print_confusion(&vision_eval::confusion(&ours, labels));
            let reference =
                self.reference.first().map(|r| vision_eval::faces_by_category(&r.predictions, labels));
            print_categories(&vision_eval::faces_by_category(&ours, labels), reference.as_ref());
        }
    }

    fn print_types(&self) {
        let n = self.outcomes.len() as f64;
        let count = |t: ProfileType| {
            self.outcomes.iter().filter(|o| o.as_ref().is_ok_and(|r| r.profile_type == t)).count()
        };
        let share = |k: usize| format!("{:.1} %", 100.0 * k as f64 / n);
        let reference = self.reference.first();
        let ref_share = |min_faces: u32| {
            reference.map_or("-".into(), |r| {
                let k = r.predictions.values().filter(|p| p.faces >= min_faces).count();
                format!("{:.1} %", 100.0 * k as f64 / r.images.max(1) as f64)
            })
        };
        println!();
        let (person, group) = (count(ProfileType::Person), count(ProfileType::Group));
        row("face reported (person or group)", &ref_share(1), &share(person + group), "reference: 1+ faces");
        row("typed group", &ref_share(2), &share(group), "reference: 2+ faces");
        row("typed person", "", &share(person), "");
        row("typed no_person", "", &share(count(ProfileType::NoPerson)), "");
        row("typed default_avatar", "", &share(count(ProfileType::DefaultAvatar)), "");
        let errors = self.outcomes.iter().filter(|o| o.is_err()).count();
        row("not classified (errors)", "", &share(errors), "");
        if let Some(r) = reference {
            let unreadable =
                r.report.get("unreadable_skipped").and_then(serde_json::Value::as_u64).unwrap_or(0);
            println!("  reference: {} pictures timed, {unreadable} unreadable skipped", r.images);
        }
    }

    /// Ours only: gender accuracy when the uncertain band abstains, and its coverage.
    fn print_abstention(&self, labels: &[crate::vision::labels::Labelled]) {
        let by_name: BTreeMap<&str, _> =
            self.pictures.iter().map(|p| p.name.as_str()).zip(self.outcomes).collect();
        let (mut found, mut given, mut right) = (0_usize, 0_usize, 0_usize);
        for l in labels {
            let Some(truth) = l.gender else { continue };
            let Some(Ok(r)) = by_name.get(l.file.as_str()) else { continue };
            let Some(g) = r.gender else { continue };
            found += 1;
            if let Some(label) = g.label {
                given += 1;
                right += usize::from(label == truth);
            }
        }
        if found > 0 {
            println!();
            row(
                "gender given (not abstained), of faces found",
                "",
                &show(Some(given as f64 / found as f64), Unit::Share),
                "",
            );
            row(
                "gender accuracy when given",
                "",
                &show((given > 0).then(|| right as f64 / given as f64), Unit::Share),
                "",
            );
        }
    }
}
