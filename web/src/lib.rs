//! The browser app (Leptos, client-side rendered): see issue 4.
