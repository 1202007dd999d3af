//! The SPA's Rooms page in two browser sessions on one server: alice
//! creates a room with bob, both chat in it, presence shows both and then
//! one, bob is removed and sees it, and a room he no longer belongs to
//! tells him so.

use std::sync::Arc;
use tether_e2e::{Result, Session, TIMEOUT, root, text_of};

/// JavaScript: the texts of every element with this `data-testid`.
fn texts_of(id: &str) -> String {
    format!(
        "Array.from(document.querySelectorAll('[data-testid=\"{id}\"]')).map(e => e.textContent.trim())"
    )
}

/// JavaScript: the names listed under `room-presence`, sorted.
const PRESENCE: &str = "Array.from(document.querySelectorAll('[data-testid=room-presence] li')).map(e => e.textContent.trim()).sort().join(',')";

async fn wait_live(s: &Session) -> Result {
    s.wait_for(
        "the room to be live",
        &format!("{} === 'live'", text_of("room-state")),
        TIMEOUT,
    )
    .await
}

async fn wait_presence(s: &Session, names: &[&str]) -> Result {
    let mut names = names.to_vec();
    names.sort_unstable();
    s.wait_for(
        &format!("presence {names:?}"),
        &format!("{PRESENCE} === '{}'", names.join(",")),
        TIMEOUT,
    )
    .await
}

async fn say(s: &Session, text: &str) -> Result {
    s.type_into("room-input", text).await?;
    s.click("room-send").await
}

/// Waits until the room's messages (author + text) end with `text`, the
/// newest last.
async fn wait_last_message(s: &Session, text: &str) -> Result {
    s.wait_for(
        &format!("the message {text:?} last"),
        &format!(
            "(a => a.length > 0 && a[a.length - 1].includes({text:?}))({})",
            texts_of("room-message")
        ),
        TIMEOUT,
    )
    .await
}

async fn messages(s: &Session) -> Result<Vec<String>> {
    let value = s.js(&texts_of("room-message")).await?;
    Ok(value
        .as_array()
        .ok_or("a list of messages")?
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect())
}

#[tokio::test]
async fn alice_and_bob_chat_in_a_room_and_bob_is_removed() {
    Session::run_pair("rooms", |alice, bob: Arc<Session>| async move {
        let (alice_name, alice_password) = alice.server.new_user().await?;
        let (bob_name, bob_password) = alice.server.new_user().await?;
        alice.sign_in(&alice_name, &alice_password).await?;
        bob.sign_in(&bob_name, &bob_password).await?;

        // Alice creates the room with bob through the form and lands in it.
        alice.click("nav-rooms").await?;
        alice
            .wait_for(
                "the rooms page",
                "document.querySelector('[data-testid=room-create-submit]')",
                TIMEOUT,
            )
            .await?;
        alice.type_into("room-create-name", "Tea room").await?;
        alice.type_into("room-create-members", &bob_name).await?;
        alice.click("room-create-submit").await?;
        wait_live(&alice).await?;
        let room_path = alice.path().await?;
        assert!(room_path.starts_with("/rooms/"), "{room_path}");

        // Bob finds it in his list and opens it.
        bob.click("nav-rooms").await?;
        bob.wait_for(
            "the room in bob's list",
            &format!("{} === 'Tea room'", text_of("room-link")),
            TIMEOUT,
        )
        .await?;
        bob.click("room-link").await?;
        wait_live(&bob).await?;
        assert_eq!(bob.path().await?, room_path);
        wait_presence(&alice, &[&alice_name, &bob_name]).await?;
        wait_presence(&bob, &[&alice_name, &bob_name]).await?;

        // They chat; each sees the other's message once, newest last, and
        // alice's own shows acked.
        say(&alice, "hello bob").await?;
        wait_last_message(&bob, "hello bob").await?;
        alice
            .wait_for(
                "alice's message acked",
                &format!("{}.includes('acked')", texts_of("room-message-status")),
                TIMEOUT,
            )
            .await?;
        say(&bob, "hi alice").await?;
        wait_last_message(&alice, "hi alice").await?;
        wait_last_message(&bob, "hi alice").await?;
        for s in [&alice, &bob] {
            let lines = messages(s).await?;
            assert_eq!(lines.len(), 2, "{lines:?}");
            assert!(lines[0].contains(&alice_name) && lines[0].contains("hello bob"), "{lines:?}");
            assert!(lines[1].contains(&bob_name) && lines[1].contains("hi alice"), "{lines:?}");
        }

        // Alice removes bob: he is told, and presence is alice alone.
        alice
            .js(&format!(
                "document.querySelector('[data-testid=room-remove-member][data-username=\"{bob_name}\"]').click()"
            ))
            .await?;
        bob.wait_for(
            "bob told he was removed",
            &format!("{} === 'You have been removed from this room.'", text_of("room-error")),
            TIMEOUT,
        )
        .await?;
        assert_eq!(
            bob.js(&format!("{} ?? ''", text_of("room-state"))).await?.as_str(),
            Some("failed")
        );
        wait_presence(&alice, &[&alice_name]).await?;
        let shot = format!("rooms.{}.png", alice.browser.name());
        alice
            .screenshot(&root().join("target/screenshots").join(shot))
            .await?;

        // Coming back to the room later: not a member any more.
        bob.goto(&room_path).await?;
        bob.wait_for(
            "bob refused",
            &format!("{} === 'You are not a member of this room.'", text_of("room-error")),
            TIMEOUT,
        )
        .await?;
        // Alice's room is still live and hers.
        say(&alice, "just me now").await?;
        wait_last_message(&alice, "just me now").await?;
        assert_eq!(
            alice.js(&format!("{} ?? ''", text_of("room-state"))).await?.as_str(),
            Some("live")
        );
        Ok(())
    })
    .await;
}
