use super::*;
use serde_json::json;

fn ctx() -> Value {
    Value::from_serialize(json!({
        "now": "2025-03-01T12:00:00Z",
        "trigger": {"alert": {"id": "a1", "score": 87, "ids": ["e1", "e2"], "details": {"k": "v"}, "none": null}},
        "person": {"training_date": "2024-01-01", "name": "He said \"hi\"\\"},
    }))
}

fn render_one(source: serde_json::Value) -> Result<serde_json::Value, String> {
    let mut env = environment();
    let (mut uses, mut errors) = (Vec::new(), Vec::new());
    let tpl = Compiler { env: &mut env }.value(&source, "x", &mut uses, &mut errors);
    if let Some((path, msg)) = errors.first() {
        return Err(format!("{path}: {msg}"));
    }
    render(&env, &tpl, &ctx())
}

#[test]
fn one_expression_keeps_its_type_and_text_is_rendered() {
    let cases = [
        (json!("{{ trigger.alert.score }}"), json!(87)),
        (json!("{{ trigger.alert.ids }}"), json!(["e1", "e2"])),
        (json!("{{ trigger.alert.details }}"), json!({"k": "v"})),
        (json!("{{ trigger.alert.none }}"), json!(null)),
        (json!(" {{- trigger.alert.score + 1 -}} "), json!(88)),
        (json!("score {{ trigger.alert.score }}"), json!("score 87")),
        (json!("{{ trigger.alert.id }}-{{ trigger.alert.score }}"), json!("a1-87")),
        (json!("no template"), json!("no template")),
        (json!("{{ trigger.alert.nope | default('none given') }}"), json!("none given")),
        (json!("{{ trigger.alert.nope is defined }}"), json!(false)),
        (json!(12.5), json!(12.5)),
        (json!(true), json!(true)),
        (
            json!({"a": ["{{ trigger.alert.id }}", 3], "b": {"c": "{{ trigger.alert.score > 50 }}"}}),
            json!({"a": ["a1", 3], "b": {"c": true}}),
        ),
    ];
    for (source, want) in cases {
        assert_eq!(render_one(source.clone()), Ok(want), "{source}");
    }
}

#[test]
fn filters_give_what_the_spec_says() {
    let cases = [
        (r#"{{ person.name | quote }}"#, json!(r#""He said \"hi\"\\""#)),
        ("{{ person.training_date | days_ago }}", json!(425)),
        ("{{ '2025-02-28T13:00:00Z' | days_ago }}", json!(0)),
        ("{{ '2025-02-27T11:00:00Z' | days_ago }}", json!(2)),
        ("{{ trigger.alert.none | days_ago }}", json!(null)),
        ("{{ 1740830400 | timestamp_to_iso8601 }}", json!("2025-03-01T12:00:00Z")),
        ("{{ '2025-03-01T12:00:00Z' | iso8601_to_timestamp }}", json!(1740830400)),
        ("{{ 'now' | time_with_delta(days=-1, hours=2) }}", json!("2025-02-28T14:00:00Z")),
        ("{{ '2025-01-01T00:00:00Z' | time_with_delta(weeks=1) }}", json!("2025-01-08T00:00:00Z")),
        ("{{ trigger.alert.details | tojson }}", json!(r#"{"k":"v"}"#)),
    ];
    for (source, want) in cases {
        assert_eq!(render_one(json!(source)), Ok(want), "{source}");
    }
}

#[test]
fn a_quoted_value_reads_back_as_the_same_string_in_a_pipe_query() {
    let rendered = render_one(json!("user_id == {{ person.name | quote }}"));
    let Ok(serde_json::Value::String(query)) = rendered else { panic!("{rendered:?}") };
    let parsed = vigie_query::parse(&query);
    assert!(parsed.is_ok(), "{query}: {parsed:?}");
    assert!(query.ends_with(r#""He said \"hi\"\\""#), "{query}");
}

#[test]
fn an_undefined_value_fails_the_rendering_instead_of_printing_nothing() {
    let cases = [
        ("hello {{ trigger.alert.nope }}", "undefined value at `trigger.alert.nope`"),
        ("{% if trigger.alert.nope.x %}x{% endif %}", "undefined value at `trigger.alert.nope.x`"),
        ("{{ trigger.alert.nope }}", "`trigger.alert.nope` is undefined"),
        ("{{ trigger.nope.deeper }}", "undefined"),
        ("{{ trigger.alert.none | quote }}", "quote got nothing"),
        ("{{ 'yesterday' | days_ago }}", "neither RFC 3339 nor a date"),
        ("{{ 'now' | time_with_delta(fortnights=1) }}", "unknown keyword argument"),
    ];
    for (source, want) in cases {
        let got = render_one(json!(source));
        assert!(got.as_ref().is_err_and(|e| e.contains(want) && e.starts_with("x: ")), "{source}: {got:?}");
    }
}

#[test]
fn a_runaway_loop_runs_out_of_fuel() {
    let got = render_one(json!(
        "{% set ns = namespace(n=0) %}{% for i in range(100000) %}{% for j in range(100000) %}{% set ns.n = ns.n + 1 %}{% endfor %}{% endfor %}{{ ns.n }}"
    ));
    assert!(got.as_ref().is_err_and(|e| e.contains("fuel")), "{got:?}");
}

#[test]
fn rendered_text_is_capped() {
    let got = render_one(json!("{% for i in range(90000) %}aaaaaaaaaaaaaaaaaaaa{% endfor %}"));
    assert!(got.as_ref().is_err_and(|e| e.contains("longer than 1024 KiB")), "{got:?}");
    let fits = render_one(json!("{% for i in range(1000) %}aaaaaaaaaaaaaaaaaaaa{% endfor %}"));
    assert!(fits.is_ok_and(|v| v.as_str().map(str::len) == Some(20_000)));
}

#[test]
fn compiling_notes_the_variables_each_path_reads_and_reports_syntax_errors() {
    let mut env = environment();
    let (mut uses, mut errors) = (Vec::new(), Vec::new());
    let source = json!({"a": "{{ steps.facts.person.email }}", "b": ["x {{ vars.days }} {% for e in trigger.alert.ids %}{{ e }}{% endfor %}"], "c": "{{ oops("});
    Compiler { env: &mut env }.value(&source, "s", &mut uses, &mut errors);
    let seen: Vec<(String, String)> = uses.into_iter().map(|u| (u.path, u.var)).collect();
    assert!(seen.contains(&("s.a".into(), "steps.facts.person.email".into())), "{seen:?}");
    assert!(seen.contains(&("s.b[0]".into(), "vars.days".into())), "{seen:?}");
    assert!(seen.contains(&("s.b[0]".into(), "trigger.alert.ids".into())), "{seen:?}");
    assert!(!seen.iter().any(|(_, v)| v == "e"), "loop variables are not context variables: {seen:?}");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, "s.c");
    assert!(errors[0].1.contains("does not parse"), "{errors:?}");
}

#[test]
fn only_a_whole_single_expression_counts_as_one() {
    assert_eq!(single_expression("{{ a.b }}"), Some(" a.b "));
    assert_eq!(single_expression("{{ a }} {{ b }}"), None);
    assert_eq!(single_expression("x {{ a }}"), None);
    assert_eq!(single_expression("{{ }}"), None);
}

#[test]
fn sources_that_could_allocate_without_bound_are_refused_with_the_alternative() {
    let refused = [
        ("{% for i in range(9) %}{{ \"x\" * 99999999 }}{% endfor %}", "`*`"),
        ("{% set x = 'ab' %}{% set x = x ~ x %}{% set x = x ~ x %}{{ x }}", "{{ a }}{{ b }}"),
        ("{% set x = x + x %}", "`+`"),
        ("{{ a + [b] }}", "`+`"),
        ("{{ 2 ** 2 ** 64 }}", "`**`"),
        ("{{ x | indent(99999999) }}", "`indent`"),
        ("{{ '%s' | format(x) }}", "`format`"),
        ("{{ x|pprint }}", "`pprint`"),
        ("{% macro m(s) %}{{ m(s) }}{% endmacro %}", "macros"),
        ("{% filter upper %}{{ x }}{% endfilter %}", "{% filter %}"),
        ("{%- set x -%}text{%- endset -%}", "{% set x = value %}"),
        ("text\n{{ y }}\n{{ a\n ~ b }}", "line 3: "),
    ];
    for (source, want) in refused {
        let got = check_template_source(source);
        assert!(got.as_ref().is_err_and(|e| e.contains(want)), "{source}: {got:?}");
    }
    let accepted = [
        "{{ x | default('*') }} {{ \"~ ** +\" }} {# a * b ~ c #}",
        "{{- trigger.alert.score + 1 -}} {{ 1 + x }} {{ x + -1 }} {% set ns.n = ns.n + 1 %}",
        "{{ a }}{{ b }} {{ x | tojson(indent=2) }} {% set indent = 4 %}",
        "{% raw %}{{ a ~ b * c }}{% endraw %} {{ '}}' }} {{ a }}",
        "no template * ~ + at all",
        "{{ 'it\\'s * ~' }}",
    ];
    for source in accepted {
        assert_eq!(check_template_source(source), Ok(()), "{source}");
    }
}

#[test]
fn compiling_refuses_a_bomb_and_the_condition_too() {
    let got = render_one(json!("{% set x = 'a' %}{% set x = x ~ x %}{{ x }}"));
    assert!(got.is_err_and(|e| e.starts_with("x: line 1: `~`")));
    let mut env = environment();
    let e = (Compiler { env: &mut env }).expression("trigger.alert.title * 99999999", "c", &mut Vec::new()).expect_err("refused");
    assert!(e.starts_with("`*`"), "{e}");
}

#[test]
fn filters_that_grow_their_input_stop_at_the_limit() {
    let chain = format!("{{{{ trigger.alert.id | replace('a', '{}') | replace('a', '{}') }}}}", "a".repeat(2000), "a".repeat(2000));
    let got = render_one(json!(chain));
    assert!(got.as_ref().is_err_and(|e| e.contains("replace would build more than")), "{got:?}");
    let tojson = format!("{{{{ '\"\\\\' {} }}}}", "| tojson ".repeat(40));
    let got = render_one(json!(tojson));
    assert!(got.as_ref().is_err_and(|e| e.contains("tojson would build more than")), "{got:?}");
    let got = render_one(json!("{{ trigger.alert | tojson(indent=99999999) }}"));
    assert!(got.as_ref().is_err_and(|e| e.contains("indent of at most 8")), "{got:?}");
    assert_eq!(render_one(json!("{{ trigger.alert.ids | join(', ') }}|{{ 'a-b' | replace('-', '+') }}")), Ok(json!("e1, e2|a+b")));
    assert_eq!(render_one(json!("{{ trigger.alert.details | tojson }}")), Ok(json!("{\"k\":\"v\"}")));
}

#[test]
fn a_closing_marker_inside_brackets_does_not_end_the_block() {
    // minijinja ends `{{ … }}` only when no bracket is open: the `}}` of the dict is inside it.
    let hidden = "{{ {'a': {'b': 1}} ~ \"{#\" }}{% set x = x ~ x %}{{ \"#}\" }}";
    assert!(check_template_source(hidden).is_err_and(|e| e.contains("`~`")));
    let hidden = "{{ {'a': {'b': 1}} }}{% set x = x ~ x %}";
    assert!(check_template_source(hidden).is_err_and(|e| e.contains("`~`")));
    let hidden = "{{ [1, 2][0] }}{{- (x) -}}{%- set y = y ~ y -%}";
    assert!(check_template_source(hidden).is_err_and(|e| e.contains("`~`")));
    // Strings with the other quote, escapes, comments and raw blocks are read as minijinja does.
    let hidden = "{{ 'a\\'}}' ~ \"}}\\\"\" }}";
    assert!(check_template_source(hidden).is_err_and(|e| e.contains("`~`")), "{hidden}");
    assert_eq!(check_template_source("{#- {{ a ~ b }} -#}{%- raw -%}{{ a ~ b }}{%+ endraw +%}"), Ok(()));
    assert!(check_template_source("{% raw %}{{ a }}{% endraw %}{{ a ~ b }}").is_err());
    assert!(check_template_source("{% raw x %}{{ a ~ b }}{% endraw %}").is_err(), "not a raw tag");
}

#[test]
fn statements_that_render_into_memory_are_refused() {
    let refused = [
        ("{% set x | tojson(indent=2) %}{% set y = 1 %}{% endset %}", "{% set x = value %}"),
        ("{% set x|upper %}a=b{% endset %}", "{% set x = value %}"),
        ("{% for i in [[1]] recursive %}{{ loop(i) }}{% endfor %}", "recursive"),
        ("{{ loop(x) }}", "`loop(…)`"),
        ("{% block b %}{{ super() }}{% endblock %}", "{% block %}"),
        ("{{ super() }}", "`super(…)`"),
        ("{{ self.b() }}", "`self.…`"),
        ("{% extends 'x' %}", "{% extends %}"),
        ("{% include 'x' %}", "{% include %}"),
        ("{% from 'x' import m %}", "{% from %}"),
        ("{% call m() %}{% endcall %}", "macros"),
    ];
    for (source, want) in refused {
        let got = check_template_source(source);
        assert!(got.as_ref().is_err_and(|e| e.contains(want)), "{source}: {got:?}");
    }
    for ok in ["{% set a, b = 1, 2 %}", "{% set ns.count = 3 %}", "{% for i in loop_items %}{{ loop.index }}{% endfor %}", "{{ x.self }}"] {
        assert_eq!(check_template_source(ok), Ok(()), "{ok}");
    }
}

#[test]
fn operators_are_taken_between_known_numbers_only() {
    for ok in [
        "{{ risk_score | float * 100 }}",
        "{{ 100 * risk_score | float }}",
        "{{ (x | round(2)) * 3 }}",
        "{{ 3 * (x | int) }}",
        "{{ x.y | round(2) * -3 }}",
        "{{ 2 * 3 }}",
        "{{ a | int + b | int }}",
        "{{ x[:8] }} {{ x[-4:] }} {{ x[2:10] }} {{ x[0] }} {{ [{'a': 1}][0] }}",
    ] {
        assert_eq!(check_template_source(ok), Ok(()), "{ok}");
    }
    for (bad, want) in [
        ("{{ risk_score * 100 }}", "`*`"),
        ("{{ 'ab' * 3 }}", "`*`"),
        ("{{ x | float | string * 3 }}", "`*`"),
        ("{{ 3 * x | int | list }}", "`*`"),
        ("{{ a + b }}", "`+`"),
        ("{{ (x if c else 3) * 100 }}", "`*`"),
        ("{{ 3 * (x or 3) }}", "`*`"),
        ("{{ 3 * (x | int) | string }}", "`*`"),
        ("{{ x[1:] }}", "slice"),
        ("{{ x[a:b] }}", "slice"),
        ("{{ x[::-1] }}", "slice"),
        ("{{ x[0:99999] }}", "slice"),
        ("{{ ['a\nb'] | map('indent', 2000000000) }}", "`indent`"),
        ("{{ x | batch(3) }}", "`batch`"),
    ] {
        let got = check_template_source(bad);
        assert!(got.as_ref().is_err_and(|e| e.contains(want)), "{bad}: {got:?}");
    }
    assert_eq!(render_one(json!("{{ trigger.alert.score | float * 100 }}")), Ok(json!(8700.0)));
    assert_eq!(render_one(json!("{{ trigger.alert.score + 1 }}")), Ok(json!(88)));
}

/// Renders a text template (not a single expression) in the safe environment, with its error.
fn render_text_source(src: &str) -> Result<String, String> {
    let env = safe_environment();
    let t = env.template_from_str(src).map_err(|e| e.to_string())?;
    let mut out = Capped { buf: Vec::new(), overflow: false, limit: MAX_RENDERED_BYTES };
    t.render_captured_to(ctx(), &mut out).map_err(|e| e.to_string())?; // not `{e:#}`: it would print the nested values
    Ok(String::from_utf8(out.buf).unwrap_or_default())
}

#[test]
fn the_environment_keeps_only_filters_that_cannot_multiply_their_input() {
    for gone in ["pprint", "zip", "indent", "format", "batch", "slice", "groupby"] {
        let got = render_text_source(&format!("{{{{ [1] | {gone} }}}}"));
        assert!(got.as_ref().is_err_and(|e| e.contains("unknown filter")), "{gone}: {got:?}");
    }
    assert!(render_text_source("{{ debug() }}").is_err());
    // `map` applies only the filters that keep the size of their input.
    let got = render_text_source("{{ ['a', 'b'] | map('tojson') | list }}");
    assert!(got.is_err_and(|e| e.contains("map takes an attribute")));
    assert_eq!(render_text_source("{{ ['a', 'b'] | map('upper') | join(',') }}"), Ok("A,B".to_owned()));
    assert_eq!(render_text_source("{{ [{'n': 1}] | map(attribute='n') | list }}"), Ok("[1]".to_owned()));
    // `sum` adds numbers; a sum of lists would concatenate them.
    assert_eq!(render_text_source("{{ [1, 2.5] | sum }}"), Ok("3.5".to_owned()));
    assert!(render_text_source("{% set l = [1] %}{{ [l, l] | sum }}").is_err_and(|e| e.contains("sum adds numbers")));
}

#[test]
fn builtin_filters_repeated_stop_at_the_budget() {
    // Doubling through builtin filters: each step is charged to the rendering.
    let steps = |step: &str, n: usize| format!("{{% set x = 'a<b&c' %}}{}{{{{ x | length }}}}", step.repeat(n));
    for (step, n) in [
        ("{% set x = [x, x] | string %}", 40),
        ("{% set x = [x, x, x, x] | join(',') %}", 30),
        ("{% set x = x | tojson %}", 60),
        ("{% set x = x | list | chain(x | list) | list %}", 40),
        ("{% set x = x | replace('a', 'aa') | replace('b', 'bb') %}", 40),
    ] {
        let got = render_text_source(&steps(step, n));
        assert!(got.as_ref().is_err_and(|e| e.contains("would build more than") || e.contains("MiB in all")), "{step}: {got:?}");
    }
    // `escape` of escaped text is the same text (`lower` keeps it marked safe): no growth.
    let got = render_text_source(&steps("{% set x = x | escape | lower %}", 40));
    assert_eq!(got, Ok("12".to_owned()));
    let got = render_text_source(&steps("{% set x = x | escape | string | lower | replace('', '') %}", 40));
    assert!(got.is_ok_and(|n| n.parse::<usize>().is_ok_and(|n| n <= MAX_FILTER_OUTPUT)));
    // A nested list is printed through the capped writer, not built in memory.
    let nested = format!("{{% set x = 'abcd' %}}{}{{{{ x | upper | length }}}}", "{% set x = [x, x] %}".repeat(60));
    assert!(render_text_source(&nested).is_err_and(|e| e.contains("would build more than")));
    // Many small charges add up: the budget is per rendering.
    let looped = "{% set ns = namespace(l=[]) %}{% set big = range(30000) | list %}\
                  {% for i in range(2000) %}{% set ns.l = [ns.l, big | reverse] %}{% endfor %}{{ 1 }}";
    assert!(render_text_source(looped).is_err_and(|e| e.contains("MiB in all")));
}

#[test]
fn ordinary_filters_still_work() {
    let src = "{{ 'Hello World' | lower | title }}|{{ '  x ' | trim }}|{{ [3, 1, 2] | sort | join('') }}|\
               {{ 'a b  c' | split | length }}|{{ 'a,b' | split(',') | last }}|{{ {'b': 1, 'a': 2} | dictsort | first | first }}|\
               {{ [1, 1, 2] | unique | list | length }}|{{ 'ab' | list | reverse | join }}|{{ x | default('d') }}|\
               {{ 1.256 | round(1) }}|{{ '3' | int + 1 }}|{{ [1, 5] | max }}|{{ '<b>' | e }}|{{ 12 is divisibleby 3 }}|\
               {{ 'x' is string and 1 is number and [] is sequence and {} is mapping }}|{{ range(3) | list | length }}|\
               {{ dict(a=1).a }}|{{ 'ab' | capitalize }}|{{ 'a\nb' | lines | length }}|{{ [1, 2] | select('odd') | list }}";
    let env = {
        let mut env = safe_environment();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env
    };
    let got = env.render_str(src, minijinja::context! {}).expect("renders");
    assert_eq!(got, "Hello World|x|123|3|b|a|2|ba|d|1.3|4|5|&lt;b&gt;|True|True|3|1|Ab|2|[1]");
}
