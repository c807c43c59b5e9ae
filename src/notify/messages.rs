//! A notification mail, rendered from the facts stored with its outbox row.
//!
//! Each event has one template, `templates/mail/<event>.txt`: it extends the plain-text layout
//! and fills its blocks (subject and, per language, what happened and what to do). The whole
//! template is the text/plain part; its blocks, rendered one by one, fill the HTML layout,
//! which escapes them like any other value. So the wording of an event is written once, and
//! adding an event is a template and a line in `event_templates!`.
//!
//! Only what `MailFacts` holds reaches a message: it is masked before it is stored.

use std::time::SystemTime;

use askama::Template;
use chrono::{DateTime, FixedOffset, Offset, Utc};
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;

use super::NotifyError;
use crate::config::MailSettings;
use crate::domain::notice::{MailEvent, MailFacts};
use crate::domain::region;
use crate::domain::verification::Outcome;
use crate::domain::work_order::State;

const WORK_ORDER_HEADER: HeaderName = HeaderName::new_from_ascii_str("X-Crossprov-Work-Order");
const EVENT_HEADER: HeaderName = HeaderName::new_from_ascii_str("X-Crossprov-Event");

/// `Message-ID` of outbox row `id`: the same on every attempt, so a repeat is recognisable.
pub fn message_id(id: &str, from: &str) -> Result<String, NotifyError> {
    Ok(message_id_from(id, &parse_from(from)?))
}

fn message_id_from(id: &str, from: &Mailbox) -> String {
    format!("<{id}@{}>", from.email.domain())
}

/// The message for outbox row `id` to `recipient`. The same row renders the same bytes every
/// time (Message-ID from the row id, Date from the event, a fixed MIME boundary), so a
/// repeated delivery is recognisable.
pub fn render(
    id: &str,
    recipient: &str,
    facts: &MailFacts,
    mail: &MailSettings,
) -> Result<Message, NotifyError> {
    check_row_id(id)?;
    let from = parse_from(&mail.from)?;
    let to: Mailbox = recipient
        .parse()
        .map_err(|_| NotifyError::Recipient { row: id.to_owned() })?;
    let view = MailView::of(facts, &mail.base_url);
    let body = compose(facts.event, &view).map_err(|source| NotifyError::Template {
        event: facts.event.as_str(),
        source,
    })?;
    let message_id = message_id_from(id, &from);
    let alternatives = MultiPart::alternative()
        // lettre draws a random boundary; a fixed one keeps a resend byte-identical. Base64
        // bodies never contain "=_", so the boundary cannot occur inside a part.
        .boundary(format!("=_crossprov_{id}"))
        .singlepart(utf8_part(ContentType::TEXT_PLAIN, body.text))
        .singlepart(utf8_part(ContentType::TEXT_HTML, body.html));
    Message::builder()
        .from(from)
        .to(to)
        .subject(format!("[{}] {}", facts.reference, body.subject))
        .message_id(Some(message_id))
        .date(SystemTime::from(facts.at))
        .raw_header(HeaderValue::new(
            WORK_ORDER_HEADER,
            facts.work_order_id.as_str().to_owned(),
        ))
        .raw_header(HeaderValue::new(
            EVENT_HEADER,
            facts.event.as_str().to_owned(),
        ))
        .multipart(alternatives)
        .map_err(|source| NotifyError::Message {
            row: id.to_owned(),
            source,
        })
}

/// `mail.from` as a mailbox; start-up checks it with the same function.
pub(super) fn parse_from(value: &str) -> Result<Mailbox, NotifyError> {
    value
        .parse()
        .map_err(|e: lettre::address::AddressError| NotifyError::From {
            value: value.to_owned(),
            reason: e.to_string(),
        })
}

/// Row ids become file names and the left side of a Message-ID: only characters safe in both.
pub(super) fn check_row_id(id: &str) -> Result<(), NotifyError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(NotifyError::RowId(id.to_owned()))
    }
}

// Base64 whatever the text: Chinese is shorter that way than quoted-printable, and the choice
// does not depend on the content, so every rendering of a row agrees.
fn utf8_part(content_type: ContentType, text: String) -> SinglePart {
    SinglePart::builder()
        .header(content_type)
        .header(ContentTransferEncoding::Base64)
        .body(text)
}

/// What the templates show: the facts as people read them, in both languages.
#[derive(Debug, Clone)]
struct MailView {
    reference: String,
    msisdn_masked: String,
    name_masked: Option<String>,
    home_zh: String,
    home_en: String,
    target_zh: String,
    target_en: String,
    state_zh: &'static str,
    state_en: String,
    due_zh: String,
    due_en: String,
    deadline_zh: String,
    deadline_en: String,
    suspend_zh: Option<String>,
    suspend_en: Option<String>,
    /// The order is still being worked on, so the suspension date is a limit to meet.
    suspension_ahead: bool,
    reason: Option<String>,
    outcome_zh: Option<&'static str>,
    outcome_en: Option<String>,
    /// The quality flags, one line each: `code（reason）`.
    flags_zh: Vec<String>,
    flags_en: Vec<String>,
    link: String,
}

impl MailView {
    fn of(facts: &MailFacts, base_url: &str) -> Self {
        let home = region::province(&facts.home_province);
        let target = region::province(&facts.target_province);
        let city = region::city(&facts.target_city);
        let target_province_zh = target.map_or(facts.target_province.as_str(), |p| p.name_zh);
        let target_province_en = target.map_or(facts.target_province.as_str(), |p| p.name_en);
        let city_zh = city.map_or(facts.target_city.as_str(), |c| c.name_zh);
        let state = State::parse(&facts.state);
        Self {
            reference: facts.reference.clone(),
            msisdn_masked: facts.msisdn_masked.clone(),
            name_masked: facts.expected_name_masked.clone(),
            home_zh: home
                .map_or(facts.home_province.as_str(), |p| p.name_zh)
                .to_owned(),
            home_en: home
                .map_or(facts.home_province.as_str(), |p| p.name_en)
                .to_owned(),
            target_zh: format!("{target_province_zh} {city_zh}"),
            // Cities have no English names in GB/T 2260: the Chinese name with its code.
            target_en: format!("{city_zh} ({}), {target_province_en}", facts.target_city),
            state_zh: state.map_or("未知", state_zh),
            state_en: facts.state.replace('_', " "),
            due_zh: beijing_zh(facts.due_at),
            due_en: beijing_en(facts.due_at),
            deadline_zh: beijing_zh(facts.deadline_at),
            deadline_en: beijing_en(facts.deadline_at),
            suspend_zh: facts.suspend_at.map(beijing_zh),
            suspend_en: facts.suspend_at.map(beijing_en),
            suspension_ahead: state.is_some_and(State::is_active),
            reason: facts.reason.clone(),
            outcome_zh: facts
                .outcome
                .as_deref()
                .map(|o| Outcome::parse(o).map_or("其他", outcome_zh)),
            outcome_en: facts.outcome.as_deref().map(|o| o.replace('_', " ")),
            flags_zh: facts
                .flags
                .iter()
                .map(|f| format!("{}（{}）", f.code, f.reason.zh))
                .collect(),
            flags_en: facts
                .flags
                .iter()
                .map(|f| format!("{} ({}, {})", f.code, f.severity.as_str(), f.reason.en))
                .collect(),
            link: format!(
                "{}/api/v1/work-orders/{}",
                base_url.trim_end_matches('/'),
                facts.work_order_id
            ),
        }
    }
}

fn state_zh(state: State) -> &'static str {
    match state {
        State::Open => "待认领",
        State::Claimed => "办理中",
        State::Submitted => "结果待审核",
        State::AwaitingSecondApproval => "待二次审核",
        State::Completed => "已完成",
        State::Failed => "核验失败",
        State::Cancelled => "已撤销",
        State::Expired => "已过期",
    }
}

fn outcome_zh(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Match => "人证一致",
        Outcome::Mismatch => "人证不一致",
        Outcome::NoShow => "用户未到厅",
        Outcome::DocumentInvalid => "证件无效",
    }
}

/// China keeps one offset all year (no daylight saving time).
fn beijing(at: DateTime<Utc>) -> String {
    let offset = FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix());
    at.with_timezone(&offset)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn beijing_zh(at: DateTime<Utc>) -> String {
    format!("{}（北京时间）", beijing(at))
}

fn beijing_en(at: DateTime<Utc>) -> String {
    format!("{} (Beijing time, UTC+8)", beijing(at))
}

/// An event's wording, block by block, for the HTML layout.
#[derive(Debug)]
struct Wording {
    subject_zh: String,
    subject_en: String,
    what_zh: String,
    todo_zh: String,
    what_en: String,
    todo_en: String,
}

#[derive(Template)]
#[template(path = "mail/layout.html")]
struct HtmlBody<'a> {
    m: &'a MailView,
    w: &'a Wording,
}

struct Body {
    subject: String,
    text: String,
    html: String,
}

fn assemble<T: EventTemplate>(template: &T, m: &MailView) -> Result<Body, askama::Error> {
    let w = template.wording()?;
    Ok(Body {
        subject: format!("{} / {}", w.subject_zh, w.subject_en),
        text: template.render()?,
        html: HtmlBody { m, w: &w }.render()?,
    })
}

/// An event's template: the text body whole, and its blocks for the HTML layout.
trait EventTemplate: Template {
    fn wording(&self) -> Result<Wording, askama::Error>;
}

/// One template per event; the match is exhaustive, so an event without one does not build.
macro_rules! event_templates {
    ($($event:ident => $path:literal),* $(,)?) => {
        mod event {
            use askama::Template;

            $(
                #[derive(Template)]
                #[template(
                    path = $path,
                    escape = "none",
                    blocks = ["subject_zh", "subject_en", "what_zh", "todo_zh", "what_en", "todo_en"]
                )]
                pub(super) struct $event<'a> {
                    pub(super) m: &'a super::MailView,
                }

                impl super::EventTemplate for $event<'_> {
                    fn wording(&self) -> Result<super::Wording, askama::Error> {
                        // Blocks are written on lines of their own; the layout places them.
                        Ok(super::Wording {
                            subject_zh: self.as_subject_zh().render()?.trim().to_owned(),
                            subject_en: self.as_subject_en().render()?.trim().to_owned(),
                            what_zh: self.as_what_zh().render()?.trim().to_owned(),
                            todo_zh: self.as_todo_zh().render()?.trim().to_owned(),
                            what_en: self.as_what_en().render()?.trim().to_owned(),
                            todo_en: self.as_todo_en().render()?.trim().to_owned(),
                        })
                    }
                }
            )*
        }

        fn compose(event: MailEvent, m: &MailView) -> Result<Body, askama::Error> {
            match event {
                $(MailEvent::$event => assemble(&event::$event { m }, m),)*
            }
        }
    };
}

event_templates! {
    Opened => "mail/opened.txt",
    Claimed => "mail/claimed.txt",
    Submitted => "mail/submitted.txt",
    Returned => "mail/returned.txt",
    Completed => "mail/completed.txt",
    Failed => "mail/failed.txt",
    Cancelled => "mail/cancelled.txt",
    Rerouted => "mail/rerouted.txt",
    Reminder => "mail/reminder.txt",
    Escalation => "mail/escalation.txt",
    Expired => "mail/expired.txt",
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::domain::masking::mask_name;
    use crate::domain::notice::mask_msisdn;
    use chrono::TimeZone;
    use strum::IntoEnumIterator;

    const ROW: &str = "0192f3a4-5b6c-7d8e-9f00-112233445566";
    const FULL_NUMBER: &str = "18912345678";
    const FULL_NAME: &str = "张三丰";

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap()
    }

    /// The facts the service would store for an order opened in Yunnan for a hall in Kunming,
    /// masked from the full values by the domain's own rules.
    fn facts(event: MailEvent) -> MailFacts {
        MailFacts {
            event,
            work_order_id: "0192f3a4-0000-7000-8000-00000000abcd".into(),
            reference: "53-20261124-000017".to_owned(),
            msisdn_masked: mask_msisdn(FULL_NUMBER),
            home_province: "53".to_owned(),
            target_province: "53".to_owned(),
            target_city: "530100".to_owned(),
            state: "open".to_owned(),
            expected_name_masked: Some(mask_name(FULL_NAME)),
            due_at: at(2026, 10, 10, 7, 0),
            deadline_at: at(2026, 10, 14, 9, 0),
            suspend_at: None,
            reason: None,
            outcome: None,
            flags: Vec::new(),
            at: at(2026, 10, 9, 2, 30),
        }
    }

    fn mail() -> MailSettings {
        let mut mail = Settings::defaults().unwrap().mail;
        mail.base_url = "https://crossprov.example.cn/".to_owned();
        mail
    }

    /// A rendered message taken apart the way a mail reader would: unfolded headers, and
    /// each part's content type with its decoded text.
    struct Parsed {
        raw: String,
        headers: Vec<(String, String)>,
        parts: Vec<(String, String)>,
    }

    impl Parsed {
        fn of(message: &Message) -> Self {
            use base64::Engine;
            let raw = String::from_utf8(message.formatted()).unwrap();
            let (head, body) = raw.split_once("\r\n\r\n").unwrap();
            let headers = unfold(head);
            let boundary = format!("--=_crossprov_{ROW}");
            let parts = body
                .split(&boundary)
                .filter(|p| p.starts_with("\r\n"))
                .map(|part| {
                    let (part_head, encoded) = part.split_once("\r\n\r\n").unwrap();
                    let part_headers = unfold(part_head.trim_start());
                    let get = |name: &str| {
                        part_headers
                            .iter()
                            .find(|(n, _)| n == name)
                            .unwrap()
                            .1
                            .clone()
                    };
                    assert_eq!(get("Content-Transfer-Encoding"), "base64");
                    let compact: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(compact)
                        .unwrap();
                    (get("Content-Type"), String::from_utf8(bytes).unwrap())
                })
                .collect();
            Self {
                raw,
                headers,
                parts,
            }
        }

        fn header(&self, name: &str) -> &str {
            let found = self.headers.iter().find(|(n, _)| n == name);
            &found.unwrap_or_else(|| panic!("no {name} header")).1
        }

        fn subject(&self) -> String {
            decode_words(self.header("Subject"))
        }

        fn part(&self, content_type: &str) -> &str {
            let found = self.parts.iter().find(|(t, _)| t == content_type);
            &found.unwrap_or_else(|| panic!("no {content_type} part")).1
        }
    }

    fn unfold(head: &str) -> Vec<(String, String)> {
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded
            .split("\r\n")
            .map(|line| {
                let (name, value) = line.split_once(": ").unwrap();
                (name.to_owned(), value.to_owned())
            })
            .collect()
    }

    /// RFC 2047 `=?utf-8?b?…?=` words, as lettre writes non-ASCII header text.
    fn decode_words(value: &str) -> String {
        use base64::Engine;
        value
            .split(' ')
            .map(|word| match word.strip_prefix("=?utf-8?b?") {
                Some(rest) => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(rest.trim_end_matches("?="))
                        .unwrap();
                    String::from_utf8(bytes).unwrap()
                }
                None => word.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn rendered(facts: &MailFacts) -> Parsed {
        Parsed::of(&render(ROW, "hall@km.example.cn", facts, &mail()).unwrap())
    }

    const TEXT: &str = "text/plain; charset=utf-8";
    const HTML: &str = "text/html; charset=utf-8";

    #[test]
    fn every_event_renders_both_languages_with_the_contract_headers() {
        for event in MailEvent::iter() {
            let f = facts(event);
            let mail = rendered(&f);
            let subject = mail.subject();
            assert!(
                subject.starts_with("[53-20261124-000017] "),
                "{event:?}: {subject}"
            );
            let (zh, en) = subject["[53-20261124-000017] ".len()..]
                .split_once(" / ")
                .unwrap();
            assert!(!zh.is_ascii() && !zh.is_empty(), "{event:?}: {subject}");
            assert!(en.is_ascii() && !en.is_empty(), "{event:?}: {subject}");
            assert_eq!(
                mail.header("Message-ID"),
                format!("<{ROW}@crossprov.invalid>")
            );
            assert_eq!(
                mail.header("X-Crossprov-Work-Order"),
                "0192f3a4-0000-7000-8000-00000000abcd"
            );
            assert_eq!(mail.header("X-Crossprov-Event"), event.as_str());
            assert_eq!(mail.header("From"), "crossprov <noreply@crossprov.invalid>");
            assert_eq!(mail.header("To"), "hall@km.example.cn");
            assert!(mail
                .header("Content-Type")
                .starts_with("multipart/alternative;"));
            assert_eq!(
                mail.parts
                    .iter()
                    .map(|(t, _)| t.as_str())
                    .collect::<Vec<_>>(),
                [TEXT, HTML],
                "plain text first, so readers prefer the HTML"
            );

            let link = "https://crossprov.example.cn/api/v1/work-orders/0192f3a4-0000-7000-8000-00000000abcd";
            for (part, zh_mark, en_mark) in [
                (mail.part(TEXT), "工单编号", "Reference:"),
                (mail.part(HTML), "<div lang=\"zh-CN\">", "<div lang=\"en\">"),
            ] {
                let zh_at = part.find(zh_mark).unwrap();
                let en_at = part.find(en_mark).unwrap();
                assert!(zh_at < en_at, "{event:?}: Chinese comes first");
                assert!(part.contains(zh), "{event:?}: the subject's phrase");
                assert!(part.contains(en), "{event:?}: the subject's phrase");
                assert!(part.contains("53-20261124-000017"));
                assert!(part.contains("189****5678"));
                assert!(part.contains("张**"));
                assert!(part.contains("云南省 昆明市"));
                assert!(part.contains("2026-10-10 15:00（北京时间）"), "due_at");
                assert!(part.contains("2026-10-14 17:00（北京时间）"), "deadline_at");
                assert!(part.contains("2026-10-10 15:00 (Beijing time, UTC+8)"));
                assert!(part.contains(link), "{event:?}: {part}");
                assert!(
                    !part.contains("停机") && !part.contains("uspen"),
                    "{event:?}"
                );
                assert!(!part.contains("{{") && !part.contains("{%"), "{event:?}");
            }
        }
    }

    #[test]
    fn no_event_shows_the_full_number_or_name() {
        for event in MailEvent::iter() {
            let mut f = facts(event);
            f.suspend_at = Some(at(2026, 10, 11, 16, 0));
            f.reason = Some("用户已到厅".to_owned());
            f.outcome = Some("match".to_owned());
            let mail = rendered(&f);
            for text in [mail.raw.as_str(), mail.part(TEXT), mail.part(HTML)] {
                assert!(!text.contains(FULL_NUMBER), "{event:?}");
                assert!(!text.contains("12345678"), "{event:?}");
                assert!(!text.contains(FULL_NAME), "{event:?}");
                assert!(!text.contains("张三"), "{event:?}");
            }
            assert!(!mail.subject().contains(FULL_NUMBER));
        }
    }

    #[test]
    fn the_suspension_date_is_stated_up_front_when_the_order_has_one() {
        for event in MailEvent::iter() {
            let mut f = facts(event);
            f.suspend_at = Some(at(2026, 10, 11, 16, 0));
            let mail = rendered(&f);
            let text = mail.part(TEXT);
            let html = mail.part(HTML);
            for part in [text, html] {
                assert!(
                    part.contains("停机日期：2026-10-12 00:00（北京时间）"),
                    "{event:?}"
                );
                assert!(part.contains("Suspension date: 2026-10-12 00:00 (Beijing time, UTC+8)"));
                assert!(part.contains("以免用户被停机"), "open: a limit to meet");
            }
            // Before what happened: the first thing read after the heading.
            assert!(text.find("停机日期").unwrap() < text.find("请您").unwrap());
            assert!(html.find("停机日期").unwrap() < html.find("请您").unwrap());
        }
        let mut done = facts(MailEvent::Completed);
        done.state = "completed".to_owned();
        done.suspend_at = Some(at(2026, 10, 11, 16, 0));
        let mail = rendered(&done);
        assert!(mail
            .part(TEXT)
            .contains("停机日期：2026-10-12 00:00（北京时间）"));
        assert!(
            !mail.part(TEXT).contains("以免用户被停机"),
            "nothing left to do for a closed order"
        );
    }

    #[test]
    fn reason_and_outcome_appear_when_present() {
        let mut f = facts(MailEvent::Submitted);
        f.state = "submitted".to_owned();
        f.outcome = Some("no_show".to_owned());
        let mail = rendered(&f);
        assert!(mail.part(TEXT).contains("核验结果：用户未到厅"));
        assert!(mail.part(TEXT).contains("Outcome: no show"));
        assert!(!mail.part(TEXT).contains("原因"));

        let mut f = facts(MailEvent::Returned);
        f.state = "claimed".to_owned();
        f.reason = Some("照片模糊".to_owned());
        let mail = rendered(&f);
        assert!(mail.part(TEXT).contains("原因：照片模糊"));
        assert!(mail.part(TEXT).contains("Reason: 照片模糊"));
        assert!(mail.part(HTML).contains("照片模糊"));
    }

    #[test]
    fn the_flags_of_a_submitted_result_are_listed_with_their_reasons() {
        use crate::domain::quality::{Flag, Reason, Severity};
        let mut f = facts(MailEvent::Submitted);
        f.state = "submitted".to_owned();
        f.outcome = Some("match".to_owned());
        f.flags = vec![Flag {
            code: "chip_not_read".into(),
            severity: Severity::Medium,
            reason: Reason {
                zh: "未读取证件芯片".into(),
                en: "the document's chip was not read".into(),
            },
        }];
        let mail = rendered(&f);
        assert!(mail
            .part(TEXT)
            .contains("质量标记：chip_not_read（未读取证件芯片）"));
        assert!(mail
            .part(TEXT)
            .contains("Quality flag: chip_not_read (medium, the document's chip was not read)"));
        assert!(mail.part(HTML).contains("chip_not_read"));
        assert!(!rendered(&facts(MailEvent::Submitted))
            .part(TEXT)
            .contains("质量标记"));
    }

    #[test]
    fn html_escapes_what_people_typed_and_text_keeps_it() {
        let mut f = facts(MailEvent::Cancelled);
        f.reason = Some("<script>alert(1)</script> & more".to_owned());
        let mail = rendered(&f);
        assert!(!mail.part(HTML).contains("<script>"));
        assert!(mail.part(HTML).contains("&#60;script&#62;"));
        assert!(mail.part(TEXT).contains("<script>alert(1)</script> & more"));
    }

    #[test]
    fn a_row_renders_the_same_bytes_on_every_attempt() {
        let f = facts(MailEvent::Reminder);
        let once = render(ROW, "hall@km.example.cn", &f, &mail()).unwrap();
        let again = render(ROW, "hall@km.example.cn", &f, &mail()).unwrap();
        assert_eq!(once.formatted(), again.formatted());
        let parsed = Parsed::of(&once);
        assert_eq!(parsed.header("Date"), "Fri, 09 Oct 2026 02:30:00 +0000");

        let other = render("another-row", "hall@km.example.cn", &f, &mail()).unwrap();
        let other = String::from_utf8(other.formatted()).unwrap();
        assert!(other.contains("Message-ID: <another-row@crossprov.invalid>"));
    }

    #[test]
    fn the_message_id_takes_the_domain_of_mail_from() {
        let mut settings = mail();
        settings.from = "核验通知 <notify@mail.yn.example.cn>".to_owned();
        let m = render(
            ROW,
            "clerk@yn.example.cn",
            &facts(MailEvent::Claimed),
            &settings,
        )
        .unwrap();
        let parsed = Parsed::of(&m);
        assert_eq!(
            parsed.header("Message-ID"),
            format!("<{ROW}@mail.yn.example.cn>")
        );
    }

    #[test]
    fn the_link_has_one_slash_whatever_base_url_ends_with() {
        let mut settings = mail();
        settings.base_url = "http://127.0.0.1:8080".to_owned();
        let m = render(
            ROW,
            "hall@km.example.cn",
            &facts(MailEvent::Opened),
            &settings,
        )
        .unwrap();
        let text = Parsed::of(&m).part(TEXT).to_owned();
        assert!(text.contains(
            "http://127.0.0.1:8080/api/v1/work-orders/0192f3a4-0000-7000-8000-00000000abcd\r\n"
        ));
    }

    #[test]
    fn unknown_region_codes_are_shown_as_they_are() {
        let mut f = facts(MailEvent::Opened);
        f.target_province = "99".to_owned();
        f.target_city = "999900".to_owned();
        let mail = rendered(&f);
        assert!(mail.part(TEXT).contains("核验地点：99 999900"));
    }

    #[test]
    fn a_bad_recipient_or_row_id_is_refused_without_echoing_the_address() {
        let f = facts(MailEvent::Opened);
        let err = render(ROW, "not an address", &f, &mail()).unwrap_err();
        assert!(matches!(err, NotifyError::Recipient { .. }), "{err:?}");
        assert!(!err.to_string().contains("not an address"));
        for id in ["", "../escape", "a b", "x@y", &"a".repeat(65)] {
            let err = render(id, "hall@km.example.cn", &f, &mail()).unwrap_err();
            assert!(matches!(err, NotifyError::RowId(_)), "{id:?}: {err:?}");
        }
        let mut settings = mail();
        settings.from = "nobody".to_owned();
        let err = render(ROW, "hall@km.example.cn", &f, &settings).unwrap_err();
        assert!(err.to_string().contains("mail.from"), "{err}");
    }
}
