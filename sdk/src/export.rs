//! The [`Handler`] trait and [`export_handler!`](crate::export_handler), which makes a type
//! the component's implementation of the WIT `handle` export.
//!
//! The macro defines a private type that implements the generated `Guest` trait by
//! converting the WIT event into an [`Event`], calling the author's [`Handler::handle`], and
//! converting the error back. Authors never implement or name the generated trait, so the SDK
//! can change wit-bindgen versions without touching handlers.

use crate::bindings;
use crate::{Event, HandleError};

/// An event handler: the code the host runs for each event of the types it subscribes to.
///
/// `handle` is an associated function, not a method: an instance may be reused for many
/// events or replaced at any time, so there is no handler value to keep state in. State
/// between events belongs in [`kv`](crate::kv).
///
/// Returning `Ok(())` commits everything the call did (published events, kv writes) together
/// with the acknowledgement of the entry. Returning an error, panicking (a trap), or running
/// past the handler's time or memory limit commits nothing; see [`HandleError`] for what
/// happens to the entry then.
pub trait Handler {
    /// Handles one event.
    fn handle(event: Event) -> Result<(), HandleError>;
}

/// Called by the code [`export_handler!`](crate::export_handler) expands to.
#[doc(hidden)]
pub fn dispatch<H: Handler>(event: bindings::Event) -> Result<(), bindings::HandleError> {
    H::handle(Event::from_wit(event)).map_err(HandleError::into_wit)
}

/// Makes `$handler` (a type implementing [`Handler`]) the component's `handle` export.
///
/// Invoke it once, at the top level of a `cdylib` crate:
///
/// ```no_run
/// use watchtower_guest::{export_handler, Event, Handler, HandleError};
///
/// struct Noop;
///
/// impl Handler for Noop {
///     fn handle(_event: Event) -> Result<(), HandleError> {
///         Ok(())
///     }
/// }
///
/// export_handler!(Noop);
/// ```
#[macro_export]
macro_rules! export_handler {
    ($handler:ty) => {
        const _: () = {
            struct __WatchtowerExport;

            impl $crate::bindings::Guest for __WatchtowerExport {
                fn handle(
                    event: $crate::bindings::Event,
                ) -> ::core::result::Result<(), $crate::bindings::HandleError> {
                    $crate::export::dispatch::<$handler>(event)
                }
            }

            $crate::bindings::export! { __WatchtowerExport with_types_in $crate::bindings }
        };
    };
}
