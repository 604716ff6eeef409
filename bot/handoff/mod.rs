//! The human side of a conversation: agents and teams (`accounts`), business hours
//! (`hours`), and the desk that queues, routes and offers chats to agents.
//!
//! The engine decides what a transition means for the conversation (ownership, the
//! system line in the visitor's language); this module decides who gets the chat and
//! when, and keeps the queue. It never writes a conversation itself: it asks the
//! conversation's actor, which stays the only writer.

pub mod accounts;
pub mod canned;
pub mod desk;
pub mod hours;
pub mod packet;
