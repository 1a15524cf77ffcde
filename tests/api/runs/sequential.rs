//! The original's Sequential routines and their forms: an input the form marks
//! `isRequired: false` that nobody fills is null, in the routine and in the one it calls.

use super::*;

#[tokio::test]
async fn an_optional_input_left_unfilled_is_null_and_the_run_completes() {
    let app = run_app().await;
    let sam = user(&app, "Sam").await;
    let optional = |required: &str, optional: &str| {
        json!({"__version": "1.0", "schema": {"containers": [], "elements": [
            {"fieldName": required, "id": "a", "type": "TextInput", "isRequired": true},
            {"fieldName": optional, "id": "b", "type": "TextInput", "isRequired": false}]}})
    };
    // As the original's "Customer Feedback Summarizer": its analysisTimeframe is optional.
    let summarize = routine(
        &app,
        &sam,
        "RoutineGenerate",
        json!({
            "__version": "1.0",
            "callDataGenerate": {"__version": "1.0", "schema": {"model": "echo",
                "prompt": "Feedback: {{input.feedback}}. Timeframe: {{input.timeframe}}."}},
            "formInput": optional("feedback", "timeframe")
        }),
    )
    .await;
    let sequential = json!({"__version": "1.0",
        "graph": {"__type": "Sequential", "schema": {
            "steps": [{"id": "step-1", "subroutineId": summarize,
                       "inputMap": {"feedback": "feedback", "analysisTimeframe": "timeframe"},
                       "outputMap": {"response": "summary"}}],
            "rootContext": {"inputMap": {"feedback": "feedback",
                                         "analysisTimeframe": "analysisTimeframe"},
                            "outputMap": {"summary": "summary"}}}},
        "formInput": optional("feedback", "analysisTimeframe")});
    let run = run_of(&app, &sam, sequential.clone(), json!({"feedback": "great"})).await;
    let done = until_status(&app, &sam, &run, "Completed").await;
    assert_eq!(
        done["outputs"]["summary"].as_str().map(str::trim),
        Some("Feedback: great. Timeframe: ."),
        "{done}"
    );
    let io = app
        .call(
            Method::GET,
            &format!("/run/io?runId={run}"),
            Auth::Cookie(&sam.token),
            None,
        )
        .await;
    assert_eq!(
        io.body["data"]["io"][0]["inputs"],
        json!({"feedback": "great", "timeframe": null}),
        "{}",
        io.body
    );

    // A required input left unfilled still fails the run, naming it.
    let run = run_of(&app, &sam, sequential, json!({"analysisTimeframe": "May"})).await;
    let failed = until_status(&app, &sam, &run, "Failed").await;
    assert_eq!(failed["statusReason"], "MissingOutput", "{failed}");
}
