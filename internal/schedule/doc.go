// Package schedule is the pure core of the rollout engine: given the
// persisted state of one pipeline's runs and the facts that can hold a stage
// (freeze, deploy window, firing alarms), [Decide] says which run may enter,
// skip or be superseded at which stage now, and why every other run waits.
// It does no I/O and reads no clock; the shell gathers the facts, persists
// the state and carries the actions out.
//
// # Model
//
// A pipeline has stages 0..n-1 (at most [MaxStages]). Each (pipeline, stage)
// is a unit that holds at most one execution at a time. Runs are ordered by
// [Run.Order], the version order: unique, and a new run's order is above
// every existing run's (the engine adds a run only once its version is cut,
// and versions are cut in merge order).
//
// Each run has one [StageState] per stage. A valid run reads, left to right:
// any number of [Passed] or [Skipped] stages, then at most one stage that is
// [Pending], [Active], [Failed], [RolledBack] or [Superseded], then [Pending]
// stages (or [Superseded] ones after a supersede). "Waiting" is not stored: a
// run waits at its current stage (the first stage neither passed nor skipped)
// while that stage is [Pending], and [Decide] reports why.
//
// [Active] covers everything that occupies the unit: triggering, deploying,
// baking, rolling back. The engine reports the end of an execution with
// [State.Finish]; until then the unit stays busy, even for a cancelled run,
// because the downstream system may still be deploying.
//
// A run is stopped once it failed, was rolled back, was superseded or was
// cancelled: it enters no further stage and no longer holds any later run
// back. It is done (see [Run.Done]) once it is complete or stopped and has no
// active execution left.
//
// # Rules
//
//   - At most one active execution per unit.
//   - A run reaches stage k+1 only after it passed or skipped stage k.
//   - Versions reach each stage in increasing order: a run enters or skips
//     stage k only when no lower-order run could still enter stage k, that is
//     when every earlier run has entered, passed, skipped, failed at, been
//     superseded at or been stopped before stage k. Runs still pipeline: run
//     N+1 may deploy to qa while run N deploys to prod.
//   - A skip is decided when the run reaches the stage, from [Run.Skip], which
//     the engine fills from the labels as they are now. A skip occupies no
//     unit and ignores freeze, window and alarms (nothing is deployed), but it
//     still keeps version order, so a run that skips a stage cannot overtake
//     an earlier run in the next one.
//   - A frozen pipeline, a closed window or a firing alarm blocks new entries
//     into the stage; what is already active carries on.
//   - Queue mode: the earliest waiting run enters when the unit is free;
//     every version deploys to every stage it does not skip.
//   - Latest mode: when the unit is free and unblocked, the newest waiting run
//     that does not skip the stage enters, and the older waiting ones are
//     superseded at this stage and all later ones (the newer version contains
//     them). Only runs already waiting at the stage compete: a run still
//     upstream is never superseded on behalf of a stage it has not reached,
//     and a run that skips the stage supersedes no one, because it will not
//     deploy there. While the unit is busy or blocked, nothing is superseded
//     yet; the waits say which newer run would win.
//   - A failed run stops; later runs continue (queue mode goes on with the
//     next version). In latest mode the code of runs superseded by a run that
//     then fails reaches later stages only with the next newer run.
//
// # Using the decision
//
// [Decide] cascades within one call: a run that skips stage k may enter
// stage k+1 in the same decision. Apply the actions in the order given, one
// transaction each if need be: every prefix of the list leaves a valid state
// (supersedes come before the entry they make room for), so a crash part-way
// loses nothing, and deciding again from the persisted state yields the rest.
// Decide again after every change: a new run, a finished execution, a
// cancellation, a label change, a freeze, a window opening or closing, an
// alarm changing.
//
// Decide returns an error wrapping [ErrInvalidState] when the state breaks
// the model (two active executions in a unit, a run that reached a stage
// ahead of an earlier one that still could, malformed stage sequences,
// duplicate ids or orders). That is corruption or an engine bug; the engine
// should stop scheduling the pipeline and alert rather than guess.
//
// Alarms are facts the engine observes; the decision's waits show which
// stages have a run held only by blockers, which is where polling the alarms
// pays. Check the alarms again right before carrying out an [Enter]: if one
// fires, record it and decide again instead of entering.
package schedule
