/**
 * The floor under bundle (a): the same command schema as bench/bundle-entries/todo.ts, built
 * and used to decode, with nothing of Canon. Whatever an app does with `Schema.Struct` pins
 * this much of effect (its schema classes carry methods that reach the parser and the fiber
 * runtime), so (a) minus this is what Canon itself weighs. Never run; bench/bundle.ts bundles it.
 */
import * as Schema from "effect/Schema"

const Add = Schema.Struct({ id: Schema.String, title: Schema.String })
console.log(Schema.decodeUnknownResult(Add)({ id: "milk", title: "Milk" }))
