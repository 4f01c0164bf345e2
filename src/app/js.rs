//! Reading browser objects that web-sys does not bind without unstable flags (WebGPU) or that
//! only some browsers have (`navigator.deviceMemory`): property reads and method calls by name,
//! each tolerant of a missing property.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// `target[key]`, `undefined` when the target is not an object or the read throws.
pub fn get(target: &JsValue, key: &str) -> JsValue {
    if !target.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(target, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// `target[name](...args)`.
pub fn call_method(target: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let method: Function = get(target, name)
        .dyn_into()
        .map_err(|_| JsValue::from_str(&format!("{name} is not a function")))?;
    let args: js_sys::Array = args.iter().collect();
    method.apply(target, &args)
}

/// `await target[name](...args)`.
pub async fn await_method(
    target: &JsValue,
    name: &str,
    args: &[JsValue],
) -> Result<JsValue, JsValue> {
    let value = call_method(target, name, args)?;
    let promise = Promise::resolve(&value);
    JsFuture::from(promise).await
}
