//! A neutral [`ThreadPost`] -> the mrkdwn text the Slack desk posts in a thread (pure).
//!
//! The whole text is escaped (`&`, `<`, `>`) after wording it, so a customer's `<!channel>` or
//! a file name with markup is shown literally instead of pinging the support channel.

use switchboard_api::{text_with_links, DeskNotice, FileRef, ThreadPost, Waiting};

use super::blocks::escape;

/// The thread commands, told to an agent who typed one that does not exist.
const COMMAND_HELP: &str = "Commands: `!claim`, `!resolve`, `!ai` (hand back to the AI), `!kb approve [edited answer]`, `!kb reject`. Start a message with `//` for an internal note. Reactions on the briefing: :eyes: claims, :white_check_mark: resolves, :robot_face: hands back.";

/// The text of `post`, escaped for Slack; a reminder's mention is the one markup let through.
pub fn thread_text(post: &ThreadPost) -> String {
    let text = escape(&wording(post));
    match post {
        ThreadPost::Notice(DeskNotice::Reminder {
            mention: Some(mention),
            ..
        }) => match mention_markup(mention) {
            Some(markup) => format!("{markup} {text}"),
            None => text,
        },
        _ => text,
    }
}

/// Slack's markup for a configured mention: `@here`, `@channel`, a user group (`S...`) or a
/// user (`U...`/`W...`) id; anything else mentions nobody (config validation names it).
pub fn mention_markup(mention: &str) -> Option<String> {
    let id_of = |prefix: char| {
        mention.starts_with(prefix)
            && mention.len() > 1
            && mention
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    };
    match mention {
        "@here" => Some("<!here>".to_owned()),
        "@channel" => Some("<!channel>".to_owned()),
        _ if id_of('S') => Some(format!("<!subteam^{mention}>")),
        _ if id_of('U') || id_of('W') => Some(format!("<@{mention}>")),
        _ => None,
    }
}

/// The line above a customer's file uploaded into the thread, escaped for Slack.
pub fn file_comment(author: &str) -> String {
    escape(&file_sent(author))
}

/// A customer's file as a link, where it cannot be uploaded (its bytes are not at hand).
pub fn file_link(author: &str, file: &FileRef) -> String {
    escape(&text_with_links(
        &file_sent(author),
        std::slice::from_ref(file),
    ))
}

fn file_sent(author: &str) -> String {
    format!("*{author}* sent a file:")
}

fn wording(post: &ThreadPost) -> String {
    match post {
        ThreadPost::CustomerMessage { author, text, .. } => format!("*{author}:* {text}"),
        ThreadPost::CustomerFileGone { author, file_name } => {
            format!("*{author}* sent {file_name}, which is no longer stored.")
        }
        ThreadPost::EscalatedAgain { in_words, .. } => {
            format!(":rotating_light: Escalated again: {in_words}.")
        }
        ThreadPost::Notice(notice) => notice_wording(notice),
    }
}

fn notice_wording(notice: &DeskNotice) -> String {
    match notice {
        DeskNotice::AgentFilesNotSent { problems } => {
            format!(":warning: Not sent to the customer: {}", problems.join(" "))
        }
        DeskNotice::CustomerFileRefused { problem } => {
            format!(":warning: The customer tried to send a file that was refused: {problem}")
        }
        DeskNotice::KnowledgeCandidate { id, question, .. } => format!(
            ":books: Saved as knowledge-base candidate `{id}`: \"{question}\". Approve, edit or reject it with the buttons, or write `!kb approve` (optionally followed by an edited answer) or `!kb reject`."
        ),
        DeskNotice::SuggestionSent {
            agent,
            text,
            edited,
        } => {
            let how = if *edited {
                "edited and sent the AI's draft"
            } else {
                "approved and sent the AI's draft"
            };
            let quoted: Vec<String> = text.lines().map(|line| format!(">{line}")).collect();
            format!(":robot_face: *{agent}* {how}:\n{}", quoted.join("\n"))
        }
        DeskNotice::KnowledgeApproved { id } => format!(
            ":white_check_mark: `{id}` is now in the knowledge base; the AI answers it from now on."
        ),
        DeskNotice::KnowledgeRejected { id } => format!(":wastebasket: `{id}` rejected."),
        DeskNotice::KnowledgeReviewFailed { problem } => format!(":warning: {problem}"),
        DeskNotice::LearningDisabled => {
            "The learning loop is not enabled on this gateway.".to_owned()
        }
        DeskNotice::NoPendingCandidate => {
            "There is no pending knowledge-base candidate for this conversation.".to_owned()
        }
        DeskNotice::UnknownCommand { word } => {
            format!("Unknown command `!{word}`. {COMMAND_HELP}")
        }
        DeskNotice::DeletedAfterDelivery => {
            "This message was deleted here, but the customer had already received it.".to_owned()
        }
        DeskNotice::Reminder {
            waiting, minutes, ..
        } => match waiting {
            Waiting::ForClaim => format!(
                ":alarm_clock: Nobody has claimed this for {minutes} min. React :eyes: or write `!claim` to take it."
            ),
            Waiting::ForReply => format!(
                ":alarm_clock: The customer has waited {minutes} min for a reply."
            ),
        },
        DeskNotice::Text { text } => text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_words_are_shown_literally() {
        let post = ThreadPost::CustomerMessage {
            author: "Dana <!here>".into(),
            text: "ping <!channel> & co".into(),
            message_id: None,
        };
        assert_eq!(
            thread_text(&post),
            "*Dana &lt;!here&gt;:* ping &lt;!channel&gt; &amp; co"
        );
        assert_eq!(file_comment("<@U1>"), "*&lt;@U1&gt;* sent a file:");
    }

    #[test]
    fn reminders_mention_whom_the_route_names_and_only_that() {
        let reminder = |mention: Option<&str>| {
            thread_text(&ThreadPost::Notice(DeskNotice::Reminder {
                waiting: Waiting::ForClaim,
                minutes: 12,
                mention: mention.map(str::to_owned),
                broadcast: false,
            }))
        };
        assert!(reminder(Some("S0123TEAM"))
            .starts_with("<!subteam^S0123TEAM> :alarm_clock: Nobody has claimed this for 12 min"));
        assert!(reminder(Some("@here")).starts_with("<!here> "));
        assert!(reminder(Some("U042AGENT")).starts_with("<@U042AGENT> "));
        assert!(reminder(None).starts_with(":alarm_clock:"));
        assert!(reminder(Some("<!channel>")).starts_with(":alarm_clock:"));
        assert_eq!(mention_markup("support team"), None);
    }

    #[test]
    fn notices_tell_agents_what_to_do_next() {
        let candidate = thread_text(&ThreadPost::Notice(DeskNotice::KnowledgeCandidate {
            id: "kb-1".into(),
            question: "How do I export invoices?".into(),
            answer: "Billing > Export.".into(),
        }));
        assert!(candidate.contains("`kb-1`"), "{candidate}");
        assert!(candidate.contains("!kb approve"), "{candidate}");
        let unknown = thread_text(&ThreadPost::Notice(DeskNotice::UnknownCommand {
            word: "frobnicate".into(),
        }));
        assert!(unknown.starts_with("Unknown command `!frobnicate`."));
        assert!(unknown.contains("!claim") && unknown.contains(":eyes:"));
        let again = thread_text(&ThreadPost::EscalatedAgain {
            reason: "human_requested".into(),
            in_words: "the customer asked for a person".into(),
        });
        assert_eq!(
            again,
            ":rotating_light: Escalated again: the customer asked for a person."
        );
    }
}
