//! Automatic quality checks of an accepted verification result: each rule looks at the
//! facts the service gathered in the submit transaction and may raise a flag (a stable code,
//! a severity, a reason in Chinese and English). A flag refuses nothing; a flag whose
//! severity is in `quality.four_eyes_severities` makes completion need a second clerk.
//!
//! Adding a rule is one function and one line in `RULES`; `docs/quality.md` lists them.
//! Reasons carry thresholds and measures, never a name or a number.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use strum::{EnumIter, EnumString, IntoStaticStr};

use super::evidence::EvidenceKind;
use super::person_name;
use super::verification::{Outcome, ResultClaims};

/// How much a flag weighs. The strings are the API's and the settings'.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    IntoStaticStr,
    EnumString,
    EnumIter,
    Serialize,
    Deserialize,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Why a rule fired, in both languages of the service (Simplified Chinese first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub zh: String,
    pub en: String,
}

fn reason(zh: String, en: String) -> Option<Reason> {
    Some(Reason { zh, en })
}

/// A raised flag, as stored with the result and shown in the order view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub code: String,
    pub severity: Severity,
    pub reason: Reason,
}

/// The `[quality]` settings: the rules' thresholds and which severities need four eyes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QualitySettings {
    /// `face_match_low` below this score (0–1).
    pub face_match_min_score: f64,
    /// `document_expiring`: the document ends within this many days of `iat`.
    pub document_expiring_days: i64,
    /// `submitted_too_fast`: fewer seconds than this from the claim to the submission;
    /// 0 turns the rule off.
    pub min_seconds_claim_to_submit: i64,
    /// `staff_rate_outlier` / `hall_rate_outlier`: the window the rates are counted over.
    pub rate_window_days: i64,
    /// ... only for a staff member or hall (and its province) with at least this many
    /// results in the window.
    pub rate_min_results: i64,
    /// ... when its mismatch/no-show rate differs from its province's by more than this
    /// (an absolute difference of two fractions, 0–1).
    pub rate_max_difference: f64,
    /// Flags of these severities make completion need a second clerk.
    pub four_eyes_severities: Vec<Severity>,
}

/// Results counted over the rate window: how many, and how many were a mismatch or no-show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub results: i64,
    pub mismatch_or_no_show: i64,
}

impl Tally {
    /// Counts `n` results of this outcome.
    pub fn add(&mut self, outcome: Outcome, n: i64) {
        self.results += n;
        if matches!(outcome, Outcome::Mismatch | Outcome::NoShow) {
            self.mismatch_or_no_show += n;
        }
    }

    fn rate(&self) -> f64 {
        if self.results == 0 {
            0.0
        } else {
            self.mismatch_or_no_show as f64 / self.results as f64
        }
    }
}

/// Earlier results in the window (this one not among them): of the submitting staff member,
/// of their hall, and of every hall of the hall's province.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeRates {
    pub staff: Tally,
    pub hall: Tally,
    pub province: Tally,
}

/// The result's evidence digests found uploaded to other orders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvidenceReuse {
    /// Other orders of the same number.
    pub other_orders_same_subscriber: i64,
    /// Orders of other numbers.
    pub other_subscribers: i64,
}

/// Everything the rules look at, gathered by the service in the submit transaction.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub claims: &'a ResultClaims,
    pub outcome: Outcome,
    /// The clerk's expected name, opened where the service already opens it.
    pub expected_name: Option<&'a str>,
    /// When the hall last took the order on (claim, or a return to it).
    pub claimed_at: Option<DateTime<Utc>>,
    pub submitted_at: DateTime<Utc>,
    pub reuse: EvidenceReuse,
    pub rates: OutcomeRates,
}

type Check = fn(&Facts, &QualitySettings) -> Option<Reason>;

/// One rule: its stable code, its severity, and the check that raises it.
pub struct Rule {
    pub code: &'static str,
    pub severity: Severity,
    pub check: Check,
}

/// Every rule, in the order flags are listed.
pub const RULES: &[Rule] = &[
    rule("face_match_low", Severity::High, face_match_low),
    rule("chip_not_read", Severity::Medium, chip_not_read),
    rule(
        "operator_check_missing",
        Severity::Medium,
        operator_check_missing,
    ),
    rule("document_expired", Severity::High, document_expired),
    rule("document_expiring", Severity::Low, document_expiring),
    rule("name_variant", Severity::Low, name_variant),
    rule(
        "evidence_reused_same_subscriber",
        Severity::Medium,
        evidence_reused_same_subscriber,
    ),
    rule(
        "evidence_reused_other_subscriber",
        Severity::High,
        evidence_reused_other_subscriber,
    ),
    rule(
        "live_photo_is_id_scan",
        Severity::High,
        live_photo_is_id_scan,
    ),
    rule("submitted_too_fast", Severity::Medium, submitted_too_fast),
    rule("staff_rate_outlier", Severity::Medium, staff_rate_outlier),
    rule("hall_rate_outlier", Severity::Medium, hall_rate_outlier),
];

const fn rule(code: &'static str, severity: Severity, check: Check) -> Rule {
    Rule {
        code,
        severity,
        check,
    }
}

/// What the checks concluded: the flags raised and whether completion needs four eyes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    pub flags: Vec<Flag>,
    pub needs_second_approval: bool,
}

impl Verdict {
    pub fn codes(&self) -> Vec<&str> {
        self.flags.iter().map(|f| f.code.as_str()).collect()
    }
}

/// Runs every rule over the facts.
pub fn assess(facts: &Facts, settings: &QualitySettings) -> Verdict {
    let flags: Vec<Flag> = RULES
        .iter()
        .filter_map(|r| {
            (r.check)(facts, settings).map(|reason| Flag {
                code: r.code.to_owned(),
                severity: r.severity,
                reason,
            })
        })
        .collect();
    let needs_second_approval = flags
        .iter()
        .any(|f| settings.four_eyes_severities.contains(&f.severity));
    Verdict {
        flags,
        needs_second_approval,
    }
}

/// The method's checks matter for a match, the one outcome a clerk completes.
fn matched(f: &Facts) -> bool {
    f.outcome == Outcome::Match
}

fn face_match_low(f: &Facts, s: &QualitySettings) -> Option<Reason> {
    if !matched(f) {
        return None;
    }
    let min = s.face_match_min_score;
    match f
        .claims
        .method
        .get("face_match_score")
        .and_then(|v| v.as_f64())
    {
        Some(score) if score >= min => None,
        Some(score) => reason(
            format!("人脸比对分数 {score:.2} 低于阈值 {min:.2}"),
            format!("face-match score {score:.2} is below the threshold {min:.2}"),
        ),
        None => reason(
            "结果未给出人脸比对分数".into(),
            "the result gives no face-match score".into(),
        ),
    }
}

fn said_yes(f: &Facts, key: &str) -> bool {
    f.claims.method.get(key).and_then(|v| v.as_bool()) == Some(true)
}

fn chip_not_read(f: &Facts, _: &QualitySettings) -> Option<Reason> {
    (matched(f) && !said_yes(f, "chip_read")).then(|| Reason {
        zh: "未读取证件芯片".into(),
        en: "the document's chip was not read".into(),
    })
}

fn operator_check_missing(f: &Facts, _: &QualitySettings) -> Option<Reason> {
    (matched(f) && !said_yes(f, "operator_checked")).then(|| Reason {
        zh: "缺少营业员人工核对".into(),
        en: "no operator check was recorded".into(),
    })
}

/// The document's last valid day, when it has one (`长期` / `long_term` documents do not).
fn valid_until(f: &Facts) -> Option<NaiveDate> {
    let raw = f.claims.document.as_ref()?.valid_until.as_deref()?;
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()
}

/// The day of `iat` in China Standard Time, the documents' own calendar.
fn iat_day(f: &Facts) -> Option<NaiveDate> {
    let cst = FixedOffset::east_opt(8 * 3600)?;
    Some(
        DateTime::from_timestamp(f.claims.iat, 0)?
            .with_timezone(&cst)
            .date_naive(),
    )
}

fn document_expired(f: &Facts, _: &QualitySettings) -> Option<Reason> {
    let (until, day) = (valid_until(f)?, iat_day(f)?);
    (until < day).then(|| Reason {
        zh: format!("证件已于 {until} 过期（核验日 {day}）"),
        en: format!("the document expired on {until}, before the check on {day}"),
    })
}

fn document_expiring(f: &Facts, s: &QualitySettings) -> Option<Reason> {
    let (until, day) = (valid_until(f)?, iat_day(f)?);
    let days = (until - day).num_days();
    (until >= day && days < s.document_expiring_days).then(|| Reason {
        zh: format!(
            "证件将在 {days} 天内到期（阈值 {} 天）",
            s.document_expiring_days
        ),
        en: format!(
            "the document expires in {days} days (threshold {} days)",
            s.document_expiring_days
        ),
    })
}

/// A name that differs from the expected one outright is refused (`name_mismatch`); one
/// equal only as `person_name::same` folds it is accepted and flagged for the clerk's eye.
fn name_variant(f: &Facts, _: &QualitySettings) -> Option<Reason> {
    let (expected, doc) = (f.expected_name?, f.claims.document.as_ref()?);
    let differs_as_written = doc.name.trim() != expected.trim();
    (differs_as_written && person_name::same(&doc.name, expected)).then(|| Reason {
        zh: "证件姓名与预期姓名仅在繁简或空格写法上不同".into(),
        en: "the document's name equals the expected name only up to traditional/simplified \
             characters or spacing"
            .into(),
    })
}

fn evidence_reused_same_subscriber(f: &Facts, _: &QualitySettings) -> Option<Reason> {
    let n = f.reuse.other_orders_same_subscriber;
    (n > 0).then(|| Reason {
        zh: format!("同一材料文件（SHA-256 相同）已用于该号码的另外 {n} 张工单"),
        en: format!("an evidence file (same SHA-256) was already used for {n} other order(s) of this number"),
    })
}

fn evidence_reused_other_subscriber(f: &Facts, _: &QualitySettings) -> Option<Reason> {
    let n = f.reuse.other_subscribers;
    (n > 0).then(|| Reason {
        zh: format!("同一材料文件（SHA-256 相同）已用于其他号码的 {n} 张工单"),
        en: format!(
            "an evidence file (same SHA-256) was already used for {n} order(s) of other numbers"
        ),
    })
}

fn live_photo_is_id_scan(f: &Facts, _: &QualitySettings) -> Option<Reason> {
    let of = |kinds: &[EvidenceKind]| -> Vec<&str> {
        f.claims
            .evidence
            .iter()
            .filter(|e| kinds.iter().any(|k| k.as_str() == e.kind))
            .map(|e| e.sha256.as_str())
            .collect()
    };
    let scans = of(&[EvidenceKind::IdFront, EvidenceKind::IdBack]);
    of(&[EvidenceKind::LivePhoto])
        .iter()
        .any(|photo| scans.contains(photo))
        .then(|| Reason {
            zh: "现场照片与证件扫描件是同一文件".into(),
            en: "the live photo is the same file as an ID scan".into(),
        })
}

fn submitted_too_fast(f: &Facts, s: &QualitySettings) -> Option<Reason> {
    let min = s.min_seconds_claim_to_submit;
    let took = (f.submitted_at - f.claimed_at?).num_seconds();
    (min > 0 && took < min).then(|| Reason {
        zh: format!("认领后 {took} 秒即提交结果（阈值 {min} 秒）"),
        en: format!("the result came {took} s after the claim (threshold {min} s)"),
    })
}

/// How far `own`'s mismatch/no-show rate is from its province's, when both have enough results.
fn rate_gap(own: Tally, province: Tally, s: &QualitySettings) -> Option<(f64, f64)> {
    let enough = |t: Tally| t.results >= s.rate_min_results.max(1);
    let gap = (own.rate() - province.rate()).abs();
    (enough(own) && enough(province) && gap > s.rate_max_difference)
        .then_some((own.rate(), province.rate()))
}

fn rate_reason(
    who_zh: &str,
    who_en: &str,
    (own, province): (f64, f64),
    s: &QualitySettings,
) -> Option<Reason> {
    let days = s.rate_window_days;
    reason(
        format!(
            "{who_zh}近 {days} 天不一致/未到场比例 {:.0}%，本省为 {:.0}%",
            own * 100.0,
            province * 100.0
        ),
        format!(
            "the {who_en}'s mismatch/no-show rate over {days} days is {:.0}%, its province's {:.0}%",
            own * 100.0,
            province * 100.0
        ),
    )
}

fn staff_rate_outlier(f: &Facts, s: &QualitySettings) -> Option<Reason> {
    let gap = rate_gap(f.rates.staff, f.rates.province, s)?;
    rate_reason("该营业员", "staff member", gap, s)
}

fn hall_rate_outlier(f: &Facts, s: &QualitySettings) -> Option<Reason> {
    let gap = rate_gap(f.rates.hall, f.rates.province, s)?;
    rate_reason("该营业厅", "hall", gap, s)
}

/// Where the rate window starts.
pub fn rate_window_start(now: DateTime<Utc>, s: &QualitySettings) -> DateTime<Utc> {
    now - Duration::days(s.rate_window_days.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::verification::{DocumentClaims, EvidenceClaim};
    use serde_json::json;

    fn settings() -> QualitySettings {
        QualitySettings {
            face_match_min_score: 0.8,
            document_expiring_days: 30,
            min_seconds_claim_to_submit: 120,
            rate_window_days: 30,
            rate_min_results: 10,
            rate_max_difference: 0.25,
            four_eyes_severities: vec![Severity::High],
        }
    }

    /// 2026-11-24T08:00:00Z, 16:00 in China.
    const IAT: i64 = 1_795_507_200;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(IAT + secs, 0).unwrap_or_default()
    }

    fn sha(c: char) -> String {
        c.to_string().repeat(64)
    }

    /// A result no rule objects to.
    fn clean() -> ResultClaims {
        ResultClaims {
            wo: "wo1".into(),
            hall: "hall-a".into(),
            staff: "staff".into(),
            msisdn: "18912345678".into(),
            outcome: "match".into(),
            document: Some(DocumentClaims {
                doc_type: "resident_id".into(),
                number: "11010519491231002X".into(),
                name: "张三".into(),
                valid_until: Some("2035-06-30".into()),
            }),
            method: json!({"chip_read": true, "face_match_score": 0.97, "operator_checked": true}),
            evidence: ["id_front", "id_back", "live_photo"]
                .iter()
                .zip(['a', 'b', 'c'])
                .map(|(k, c)| EvidenceClaim {
                    kind: (*k).into(),
                    sha256: sha(c),
                })
                .collect(),
            iat: IAT,
            jti: "j".into(),
        }
    }

    fn tally(results: i64, bad: i64) -> Tally {
        Tally {
            results,
            mismatch_or_no_show: bad,
        }
    }

    /// The codes raised for `claims` with the other facts as `adjust` leaves them.
    fn codes_for(claims: &ResultClaims, adjust: impl FnOnce(&mut Facts)) -> Vec<String> {
        let mut facts = Facts {
            claims,
            outcome: Outcome::parse(&claims.outcome).unwrap_or(Outcome::Match),
            expected_name: Some("张三"),
            claimed_at: Some(at(-600)),
            submitted_at: at(0),
            reuse: EvidenceReuse::default(),
            rates: OutcomeRates {
                staff: tally(20, 2),
                hall: tally(40, 4),
                province: tally(400, 40),
            },
        };
        adjust(&mut facts);
        assess(&facts, &settings())
            .flags
            .into_iter()
            .map(|f| f.code)
            .collect()
    }

    fn only(code: &str, claims: &ResultClaims, adjust: impl FnOnce(&mut Facts)) {
        assert_eq!(codes_for(claims, adjust), [code]);
    }

    #[test]
    fn a_clean_result_raises_nothing() {
        assert!(codes_for(&clean(), |_| {}).is_empty());
    }

    #[test]
    fn face_match_below_the_threshold_or_missing() {
        let mut c = clean();
        c.method["face_match_score"] = json!(0.62);
        only("face_match_low", &c, |_| {});
        c.method["face_match_score"] = json!(0.8);
        assert!(
            codes_for(&c, |_| {}).is_empty(),
            "the threshold itself passes"
        );
        c.method = json!({"chip_read": true, "operator_checked": true});
        only("face_match_low", &c, |_| {});
    }

    #[test]
    fn the_methods_checks_concern_only_a_match() {
        let mut c = clean();
        c.outcome = "mismatch".into();
        c.method = json!({});
        assert!(codes_for(&c, |_| {}).is_empty());
    }

    #[test]
    fn no_chip_read() {
        let mut c = clean();
        c.method["chip_read"] = json!(false);
        only("chip_not_read", &c, |_| {});
    }

    #[test]
    fn no_operator_check() {
        let mut c = clean();
        c.method
            .as_object_mut()
            .map(|m| m.remove("operator_checked"));
        only("operator_check_missing", &c, |_| {});
    }

    fn valid_until(c: &mut ResultClaims, day: &str) {
        if let Some(d) = c.document.as_mut() {
            d.valid_until = Some(day.into());
        }
    }

    #[test]
    fn a_document_expired_at_iat() {
        let mut c = clean();
        valid_until(&mut c, "2026-11-23");
        only("document_expired", &c, |_| {});
    }

    #[test]
    fn a_document_expiring_within_the_days_set() {
        let mut c = clean();
        valid_until(&mut c, "2026-11-24");
        only("document_expiring", &c, |_| {});
        valid_until(&mut c, "2026-12-23");
        only("document_expiring", &c, |_| {});
        valid_until(&mut c, "2026-12-24");
        assert!(codes_for(&c, |_| {}).is_empty(), "30 days ahead is enough");
        valid_until(&mut c, "长期");
        assert!(
            codes_for(&c, |_| {}).is_empty(),
            "long-term documents never expire"
        );
    }

    #[test]
    fn a_name_equal_only_up_to_variants() {
        let mut c = clean();
        if let Some(d) = c.document.as_mut() {
            d.name = "張 三".into();
        }
        only("name_variant", &c, |_| {});
        assert!(codes_for(&c, |f| f.expected_name = None).is_empty());
    }

    #[test]
    fn evidence_already_used_for_another_order() {
        let c = clean();
        only("evidence_reused_same_subscriber", &c, |f| {
            f.reuse.other_orders_same_subscriber = 1
        });
        only("evidence_reused_other_subscriber", &c, |f| {
            f.reuse.other_subscribers = 2
        });
    }

    #[test]
    fn a_live_photo_that_is_an_id_scan() {
        let mut c = clean();
        c.evidence[2].sha256 = sha('b');
        only("live_photo_is_id_scan", &c, |_| {});
    }

    #[test]
    fn a_result_soon_after_the_claim() {
        let c = clean();
        only("submitted_too_fast", &c, |f| f.claimed_at = Some(at(-119)));
        assert!(codes_for(&c, |f| f.claimed_at = Some(at(-120))).is_empty());
    }

    #[test]
    fn a_staff_member_or_hall_far_from_the_province() {
        let c = clean();
        only("staff_rate_outlier", &c, |f| f.rates.staff = tally(10, 4));
        only("hall_rate_outlier", &c, |f| f.rates.hall = tally(40, 15));
        assert!(
            codes_for(&c, |f| f.rates.staff = tally(9, 9)).is_empty(),
            "too few results to judge"
        );
        assert!(
            codes_for(&c, |f| f.rates.province = tally(9, 0)).is_empty(),
            "too few in the province to judge"
        );
    }

    #[test]
    fn the_four_eyes_severities_decide_whether_a_second_clerk_is_needed() {
        let mut c = clean();
        c.method["chip_read"] = json!(false);
        let facts = Facts {
            claims: &c,
            outcome: Outcome::Match,
            expected_name: None,
            claimed_at: None,
            submitted_at: at(0),
            reuse: EvidenceReuse::default(),
            rates: OutcomeRates::default(),
        };
        let medium = assess(&facts, &settings());
        assert_eq!(medium.codes(), ["chip_not_read"]);
        assert!(!medium.needs_second_approval, "medium is not in [high]");
        let strict = QualitySettings {
            four_eyes_severities: vec![Severity::Medium, Severity::High],
            ..settings()
        };
        assert!(assess(&facts, &strict).needs_second_approval);
    }

    #[test]
    fn codes_are_unique_and_reasons_hold_no_personal_data() {
        for (i, r) in RULES.iter().enumerate() {
            assert!(RULES[..i].iter().all(|o| o.code != r.code), "{}", r.code);
        }
        let mut c = clean();
        if let Some(d) = c.document.as_mut() {
            d.name = "張三".into();
            d.valid_until = Some("2026-11-01".into());
        }
        c.method = json!({"face_match_score": 0.1});
        c.evidence[2].sha256 = sha('a');
        let facts = Facts {
            claims: &c,
            outcome: Outcome::Match,
            expected_name: Some("张三"),
            claimed_at: Some(at(-1)),
            submitted_at: at(0),
            reuse: EvidenceReuse {
                other_orders_same_subscriber: 1,
                other_subscribers: 1,
            },
            rates: OutcomeRates {
                staff: tally(10, 10),
                hall: tally(10, 10),
                province: tally(100, 0),
            },
        };
        let verdict = assess(&facts, &settings());
        assert_eq!(
            verdict.flags.len(),
            RULES.len() - 1,
            "all but document_expiring"
        );
        for flag in &verdict.flags {
            for text in [&flag.reason.zh, &flag.reason.en] {
                for personal in ["张三", "張三", "11010519491231002X", "18912345678", "1234"] {
                    assert!(!text.contains(personal), "{}: {text}", flag.code);
                }
            }
        }
    }
}
