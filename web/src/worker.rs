//! The CPU backend runs in a Web Worker, so the page stays responsive during a restoration and
//! cancelling is immediate (the worker is terminated). The same wasm module is loaded in the
//! worker by `static/worker.js`, which calls [`restora_worker_start`].
//!
//! Protocol (plain JS objects):
//! - page → worker: `{kind: "run", weightsId, weights?: Uint8Array, width, height, image:
//!   Float32Array (RGB interleaved), mask?: Float32Array, tile?: number, overlap: number}`;
//!   `weights` is sent only when the worker does not hold `weightsId` yet.
//! - worker → page: `{kind: "ready"}` once, then per run `{kind: "progress", done, total}`,
//!   `{kind: "done", image: Float32Array, tiles, memoryBytes}` (`memoryBytes`: the worker's wasm
//!   memory) or `{kind: "error", message, needWeights?}`;
//!   `{kind: "panic", message}` just before the instance dies of a panic.

use std::cell::RefCell;
use std::rc::Rc;

use burn::backend::ndarray::NdArray;
use js_sys::{Float32Array, Object, Reflect, Uint8Array};
use restora_model::inference::{Restoration, TileOptions};
use restora_model::{weights, Image, Mask, Restormer};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

type Cpu = NdArray<f32>;

/// The model the worker holds: weights id and network.
type Held = Rc<RefCell<Option<(String, Restormer<Cpu>)>>>;

/// Entry point of the worker (called by `worker.js` after the module is initialised).
#[wasm_bindgen]
pub fn restora_worker_start() {
    // A panic is reported to the page before the instance traps; an allocation failure traps
    // without one (the page then reports "out of memory").
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
        let _ = scope.post_message(&message_object(&[("kind", "panic".into()), ("message", info.to_string().into())]));
    }));
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let held: Held = Rc::new(RefCell::new(None));
    let reply_scope = scope.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let (scope, held) = (reply_scope.clone(), held.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let reply = match run(&scope, &held, &event.data()).await {
                Ok(reply) => reply,
                Err(message) => message_object(&[("kind", "error".into()), ("message", message.into())]),
            };
            let _ = scope.post_message(&reply);
        });
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    let _ = scope.post_message(&message_object(&[("kind", "ready".into())]));
}

async fn run(scope: &DedicatedWorkerGlobalScope, held: &Held, data: &JsValue) -> Result<JsValue, String> {
    let field = |name: &str| Reflect::get(data, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
    let number = |name: &str| field(name).as_f64().ok_or_else(|| format!("worker message without {name}"));
    let weights_id = field("weightsId").as_string().ok_or("worker message without weightsId")?;
    let (width, height) = (number("width")? as u32, number("height")? as u32);
    let image = Image::new(width, height, field("image").dyn_into::<Float32Array>().map_err(|_| "no image")?.to_vec())
        .map_err(|e| e.to_string())?;
    let mask = match field("mask").dyn_into::<Float32Array>() {
        Ok(mask) => Some(Mask::new(width, height, mask.to_vec()).map_err(|e| e.to_string())?),
        Err(_) => None,
    };
    let options =
        TileOptions { tile: field("tile").as_f64().map(|t| t as usize), overlap: number("overlap")? as usize };

    let loaded = held.borrow().as_ref().is_some_and(|(id, _)| *id == weights_id);
    if !loaded {
        let Ok(bytes) = field("weights").dyn_into::<Uint8Array>() else {
            return Ok(message_object(&[("kind", "error".into()), ("needWeights", true.into())]));
        };
        let (model, _) = weights::load::<Cpu>(&bytes.to_vec(), &Default::default()).map_err(|e| e.to_string())?;
        *held.borrow_mut() = Some((weights_id, model));
    }
    let guard = held.borrow();
    let (_, model) = guard.as_ref().expect("loaded above");
    let mut restoration =
        Restoration::new(model, &image, mask.as_ref(), &options, &Default::default()).map_err(|e| e.to_string())?;
    let total = restoration.tiles().len();
    for index in 0..total {
        let data = restoration.run_tile(index).into_data_async().await.map_err(|e| format!("{e:?}"))?;
        let values = data.into_vec::<f32>().map_err(|e| format!("{e:?}"))?;
        restoration.accumulate(index, &values).map_err(|e| e.to_string())?;
        let progress =
            message_object(&[("kind", "progress".into()), ("done", (index + 1).into()), ("total", total.into())]);
        let _ = scope.post_message(&progress);
    }
    let restored = restoration.finish().map_err(|e| e.to_string())?;
    let pixels = Float32Array::from(restored.data());
    let memory = crate::dom::wasm_memory_bytes() as f64;
    Ok(message_object(&[
        ("kind", "done".into()),
        ("image", pixels.into()),
        ("tiles", total.into()),
        ("memoryBytes", memory.into()),
    ]))
}

/// `{key: value, ...}`.
pub fn message_object(fields: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (key, value) in fields {
        let _ = Reflect::set(&object, &JsValue::from_str(key), value);
    }
    object.into()
}
