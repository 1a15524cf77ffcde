//! `/api/v2/chat*`: chats, their participants and messages. Who may do what is decided in
//! `chat::access` (one place); handlers extract, ask it, and call `ChatService`.
//!
//! - `POST /chat {name?, isPrivate?, openToAnyoneWithInvite?, botIds?, teamId?}` · `GET /chat/{id}` ·
//!   `PUT /chat/{id}` · `DELETE /chat/{id}` · `GET /chats?take&after` (mine, Relay page) ·
//!   `POST /chat/{id}/join {inviteSecret}` (a chat open to anyone with an invite)
//! - `DELETE /chatParticipant/{chatId}/{userId}` (leave, or remove someone as a manager)
//! - `POST /chatMessage {chatId, text, parentId?}` · `GET /chatMessages?chatId&take&after` ·
//!   `PUT /chatMessage/{id} {text}` · `DELETE /chatMessage/{id}`
//! - `GET /chatParticipants?chatId` · `PUT /chatParticipant/{chatId}/{userId} {hasUnread}` (own)
//! - `GET /chatMessageTree?chatId` (branch structure) · `POST /regenerateResponse {messageId}`
//! - `POST /chatInvite {chatId, userId, message?}` · `GET /chatInvites` (mine, pending) ·
//!   `POST /chatInvite/{id}/accept` · `POST /chatInvite/{id}/decline` ·
//!   `POST /chatInvite/{id}/withdraw` (the chat's managers, the inviter)

mod chats;
mod common;
mod invites;
mod messages;

pub fn config(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(chats::create_chat)
        .service(chats::join_chat)
        .service(chats::get_chat)
        .service(chats::update_chat)
        .service(chats::delete_chat)
        .service(chats::list_chats)
        .service(chats::update_participant)
        .service(chats::remove_participant)
        .service(messages::post_message)
        .service(messages::edit_message)
        .service(messages::delete_message)
        .service(messages::list_messages)
        .service(messages::message_tree)
        .service(messages::regenerate)
        .service(chats::list_participants)
        .service(invites::invite)
        .service(invites::list_invites)
        .service(invites::accept_invite)
        .service(invites::decline_invite)
        .service(invites::withdraw_invite);
}
