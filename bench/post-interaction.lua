-- wrk script: POST one realistic interaction (two classifications, metadata) with the token in $TOKEN.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = [[{"platform_id":"claude","content_hash":"a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3","interaction_type":"prompt","content_metadata":{"url":"https://claude.ai/chat/1","model":"sonnet"},"classifications":[{"type":"EMAIL","value":"jeanne.martin@example.fr","score":0.98,"start":10,"end":34},{"type":"PHONE","value":"+33 6 12 34 56 78","score":0.9,"start":40,"end":57}],"risk_score":0.31,"direction":"outbound","source":"browser_extension","user_id":"01900000-0000-7000-8000-000000000007"}]]
