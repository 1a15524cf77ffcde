//! An invite carries its inviter's authority only while they hold it (issue 34, A8): accepting
//! checks the inviter again; removing a member voids their pending invites (to the team and to
//! its chats); an admin withdraws any invite of the team, an inviter their own, and nobody else
//! anyone's. Team invites and chat invites alike.

use serde_json::{Value, json};

use super::{code, delete, join, put, team};
use crate::chat::{create_chat, get, post};
use crate::helpers::{Reply, TestApp, spawn_app};
use crate::ws::{User, chat, user};

/// `who` invites `whom` at `path` (`/memberInvite` or `/chatInvite`) with `body`; the invite id.
async fn invite(app: &TestApp, path: &str, who: &User, body: Value) -> String {
    let Reply { status, body, .. } = post(app, path, who, body).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["id"].as_str().unwrap().to_owned()
}

async fn answer(app: &TestApp, path: &str, who: &User, invite: &str, how: &str) -> Reply {
    post(app, &format!("{path}/{invite}/{how}"), who, json!({})).await
}

/// The ids of `who`'s pending invites at `list` (`/memberInvites`, `/chatInvites`).
async fn pending(app: &TestApp, list: &str, who: &User) -> Vec<String> {
    let Reply { status, body, .. } = get(app, list, Some(who)).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_removed_inviters_invites_are_void_and_accepting_checks_the_inviter() {
    let app = spawn_app().await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let bob = user(&app, "Bob").await;
    let lee = user(&app, "Lee").await;
    let ann = user(&app, "Ann").await;
    let pat = user(&app, "Pat").await;
    let crew = team(&app, &sam, json!({"name": "Crew", "isPrivate": true})).await;
    let kim_member = join(
        &app,
        &crew,
        &sam,
        &kim,
        Some(json!(["InviteMembers", "WriteChats"])),
    )
    .await;
    let bob_member = join(&app, &crew, &sam, &bob, Some(json!(["WriteChats"]))).await;
    let room = create_chat(&app, &sam, &[], json!({"teamId": crew, "name": "Plans"})).await;
    let to_lee = invite(
        &app,
        "/memberInvite",
        &kim,
        json!({"teamId": crew, "userId": lee.id}),
    )
    .await;
    let to_ann = invite(
        &app,
        "/memberInvite",
        &kim,
        json!({"teamId": crew, "userId": ann.id}),
    )
    .await;
    let chat_to_lee = invite(
        &app,
        "/chatInvite",
        &kim,
        json!({"chatId": room, "userId": lee.id}),
    )
    .await;
    let chat_to_pat = invite(
        &app,
        "/chatInvite",
        &bob,
        json!({"chatId": room, "userId": pat.id}),
    )
    .await;
    assert_eq!(
        pending(&app, "/memberInvites", &ann).await,
        std::slice::from_ref(&to_ann)
    );

    let removed = delete(&app, &format!("/member/{kim_member}"), Some(&sam)).await;
    assert_eq!(removed.status, 200, "{}", removed.body);

    // Kim's invites went with Kim: not listed, and refused when accepted.
    assert!(pending(&app, "/memberInvites", &ann).await.is_empty());
    assert!(pending(&app, "/chatInvites", &lee).await.is_empty());
    let team_accept = answer(&app, "/memberInvite", &lee, &to_lee, "accept").await;
    assert_eq!(
        (team_accept.status, code(&team_accept)),
        (409, json!("InviteWithdrawn"))
    );
    let chat_accept = answer(&app, "/chatInvite", &lee, &chat_to_lee, "accept").await;
    assert_eq!(
        (chat_accept.status, code(&chat_accept)),
        (409, json!("InviteWithdrawn"))
    );
    let seen = get(&app, &format!("/team/{crew}"), Some(&lee)).await;
    assert_eq!(
        (seen.status, code(&seen)),
        (404, json!("TeamNotFound")),
        "Lee is no member"
    );
    let seen = get(&app, &format!("/chat/{room}"), Some(&lee)).await;
    assert_eq!(seen.status, 404, "Lee is no participant");

    // An invite left pending by a removal before invites were voided (here: put back by hand)
    // is still refused: accepting asks whether its inviter may invite now.
    sqlx::query("UPDATE member_invites SET status = 'Pending' WHERE id = $1::BIGINT")
        .bind(&to_ann)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let late = answer(&app, "/memberInvite", &ann, &to_ann, "accept").await;
    assert_eq!((late.status, code(&late)), (409, json!("InviteWithdrawn")));
    let seen = get(&app, &format!("/team/{crew}"), Some(&ann)).await;
    assert_eq!(seen.status, 404, "Ann is no member");

    // Bob may no longer write in the team's chats: his invite to one no longer lets anyone in.
    let lowered = put(
        &app,
        &format!("/member/{bob_member}"),
        Some(&sam),
        json!({"permissions": []}),
    )
    .await;
    assert_eq!(lowered.status, 200, "{}", lowered.body);
    let by_bob = answer(&app, "/chatInvite", &pat, &chat_to_pat, "accept").await;
    assert_eq!(
        (by_bob.status, code(&by_bob)),
        (409, json!("InviteWithdrawn"))
    );
    let seen = get(&app, &format!("/chat/{room}"), Some(&pat)).await;
    assert_eq!(seen.status, 404, "Pat is no participant");
}

#[tokio::test]
async fn admins_withdraw_invites_inviters_their_own_and_nobody_else_anyones() {
    let app = spawn_app().await;
    let sam = user(&app, "Sam").await;
    let kim = user(&app, "Kim").await;
    let zed = user(&app, "Zed").await;
    let lee = user(&app, "Lee").await;
    let ann = user(&app, "Ann").await;
    let crew = team(&app, &sam, json!({"name": "Crew", "isPrivate": true})).await;
    join(
        &app,
        &crew,
        &sam,
        &kim,
        Some(json!(["InviteMembers", "WriteChats"])),
    )
    .await;
    join(
        &app,
        &crew,
        &sam,
        &zed,
        Some(json!(["InviteMembers", "ManageMembers"])),
    )
    .await;

    // A team invite.
    let to_lee = invite(
        &app,
        "/memberInvite",
        &kim,
        json!({"teamId": crew, "userId": lee.id}),
    )
    .await;
    let by_zed = answer(&app, "/memberInvite", &zed, &to_lee, "withdraw").await;
    assert_eq!((by_zed.status, code(&by_zed)), (403, json!("NotAllowed")));
    let by_stranger = answer(&app, "/memberInvite", &ann, &to_lee, "withdraw").await;
    assert_eq!(
        (by_stranger.status, code(&by_stranger)),
        (404, json!("InviteNotFound"))
    );
    let by_admin = answer(&app, "/memberInvite", &sam, &to_lee, "withdraw").await;
    assert_eq!(by_admin.status, 200, "{}", by_admin.body);
    assert_eq!(by_admin.body["data"]["status"], "Withdrawn");
    assert!(pending(&app, "/memberInvites", &lee).await.is_empty());
    let accepted = answer(&app, "/memberInvite", &lee, &to_lee, "accept").await;
    assert_eq!(
        (accepted.status, code(&accepted)),
        (409, json!("InviteWithdrawn"))
    );
    let again = answer(&app, "/memberInvite", &sam, &to_lee, "withdraw").await;
    assert_eq!(
        (again.status, code(&again)),
        (409, json!("InviteWithdrawn"))
    );
    // One already answered is not withdrawn.
    let declined = invite(
        &app,
        "/memberInvite",
        &kim,
        json!({"teamId": crew, "userId": ann.id}),
    )
    .await;
    let no = answer(&app, "/memberInvite", &ann, &declined, "decline").await;
    assert_eq!(no.status, 200, "{}", no.body);
    let late = answer(&app, "/memberInvite", &sam, &declined, "withdraw").await;
    assert_eq!((late.status, code(&late)), (409, json!("InviteAnswered")));
    let seen = get(&app, &format!("/team/{crew}"), Some(&lee)).await;
    assert_eq!(seen.status, 404, "Lee is no member");
    // The inviter withdraws their own.
    let to_ann = invite(
        &app,
        "/memberInvite",
        &kim,
        json!({"teamId": crew, "userId": ann.id}),
    )
    .await;
    let own = answer(&app, "/memberInvite", &kim, &to_ann, "withdraw").await;
    assert_eq!(own.status, 200, "{}", own.body);

    // A chat invite: Kim takes part in Sam's chat and invites Lee; Zed, another participant,
    // may not withdraw it; Sam, its creator, may.
    let room = chat(&app, &sam, &[&sam, &kim, &zed], false).await;
    let chat_to_lee = invite(
        &app,
        "/chatInvite",
        &kim,
        json!({"chatId": room, "userId": lee.id}),
    )
    .await;
    let by_zed = answer(&app, "/chatInvite", &zed, &chat_to_lee, "withdraw").await;
    assert_eq!((by_zed.status, code(&by_zed)), (403, json!("NotAllowed")));
    let by_stranger = answer(&app, "/chatInvite", &ann, &chat_to_lee, "withdraw").await;
    assert_eq!(
        (by_stranger.status, code(&by_stranger)),
        (404, json!("InviteNotFound"))
    );
    let by_creator = answer(&app, "/chatInvite", &sam, &chat_to_lee, "withdraw").await;
    assert_eq!(by_creator.status, 200, "{}", by_creator.body);
    assert_eq!(by_creator.body["data"]["status"], "Withdrawn");
    assert!(pending(&app, "/chatInvites", &lee).await.is_empty());
    let accepted = answer(&app, "/chatInvite", &lee, &chat_to_lee, "accept").await;
    assert_eq!(
        (accepted.status, code(&accepted)),
        (409, json!("InviteWithdrawn"))
    );
    let seen = get(&app, &format!("/chat/{room}"), Some(&lee)).await;
    assert_eq!(seen.status, 404, "Lee is no participant");
    // Kim withdraws her own.
    let to_ann = invite(
        &app,
        "/chatInvite",
        &kim,
        json!({"chatId": room, "userId": ann.id}),
    )
    .await;
    let own = answer(&app, "/chatInvite", &kim, &to_ann, "withdraw").await;
    assert_eq!(own.status, 200, "{}", own.body);
}
