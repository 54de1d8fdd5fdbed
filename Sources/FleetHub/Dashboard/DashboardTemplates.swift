/// The dashboard's Mustache templates. They live in the binary rather than in
/// resource files so an installed `fleethub` needs nothing beside it. Every page
/// works without JavaScript; the small inline script only refreshes the page's parts
/// every few seconds (`?live=1`: 304, or the parts that changed) and shows times as "12s ago".
enum DashboardTemplates {
    static let all: [String: String] = [
        "page": page, "overview-counts": overviewCounts, "overview-alerts": overviewAlerts,
        "overview-deployments": overviewDeployments, "overview-devices": overviewDevices, "bar": bar, "pager": pager,
        "device": device, "deployment": deployment, "rollout": rollout, "deployments": deployments,
        "models": models, "model": model, "modules": modules, "module": module,
    ]

    static let page = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>{{title}} · fleethub</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <style>
        body{font-family:system-ui,sans-serif;margin:0;background:#f4f6f8;color:#1d2430}
        header{background:#1d2430;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:baseline}
        pre{background:#fff;padding:8px;font-size:12px;overflow:auto} details{margin:4px 0}
        header a{color:#fff;text-decoration:none;font-weight:600}
        header .live{margin-left:auto;font-size:12px;color:#9fb3c8}
        main{padding:16px 24px;max-width:1200px}
        h1{font-size:20px;margin:8px 0 12px} h2{font-size:16px;margin:20px 0 8px}
        .cards{display:flex;gap:12px;flex-wrap:wrap}
        .card{background:#fff;border-radius:6px;padding:10px 16px;min-width:110px;box-shadow:0 1px 2px #0002}
        .card b{display:block;font-size:26px}
        table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0002}
        th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e3e8ee;font-size:13px}
        th{background:#eef2f6}
        .online{color:#17803d;font-weight:600} .offline{color:#c2261d;font-weight:600} .unknown{color:#7a8594}
        .rollout-completed,.ok-yes{color:#17803d;font-weight:600} .rollout-halted,.rollout-aborted,.ok-no{color:#c2261d;font-weight:600} .rollout-running,.rollout-soaking{color:#2f6fd6;font-weight:600}
        .pill{display:inline-block;padding:1px 8px;border-radius:10px;background:#e3e8ee;font-size:12px;margin-right:4px}
        .alert{background:#fff4f2;border-left:4px solid #c2261d;padding:6px 10px;margin:4px 0;font-size:13px}
        .ok{background:#effaf2;border-left:4px solid #17803d;padding:6px 10px;font-size:13px}
        form{margin:8px 0} input,select{padding:3px 6px}
        .bar{display:flex;height:10px;width:240px;background:#e3e8ee;border-radius:5px;overflow:hidden}
        .bar span{display:block} .applied{background:#17803d} .pending{background:#9fb3c8} .failed{background:#c2261d}
        .rolled-back{background:#e07b00} .module-not-running{background:#b59b00}
        svg{background:#fff;box-shadow:0 1px 2px #0002} code{font-size:12px}
        </style></head>
        <body><header><a href="/">fleethub</a><a href="/models">models</a><a href="/modules">modules</a><a href="/deployments">deployments</a><span class="live" id="live">live</span></header>
        <main id="main">{{{content}}}</main>
        <script>
        (function(){
          var live=document.getElementById('live'), etag='{{etag}}';
          function ago(){
            document.querySelectorAll('time[datetime]').forEach(function(t){
              var at=Date.parse(t.getAttribute('datetime')); if(isNaN(at)) return;
              var s=Math.max(0,Math.round((Date.now()-at)/1000));
              t.textContent=s<120?s+'s ago':s<7200?Math.floor(s/60)+'m ago':Math.floor(s/3600)+'h ago';
            });
          }
          function refresh(){
            // From the path, not the whole address: fetch refuses a URL with user:token@.
            var url=new URL(window.location.pathname+window.location.search, window.location.origin);
            url.searchParams.set('live','1');
            var have=[].map.call(document.querySelectorAll('.part'),function(p){return p.id.slice(5)+'='+p.dataset.etag;}).join(', ');
            fetch(url,{cache:'no-store',headers:{'If-None-Match':'"'+etag+'"','X-Dashboard-Parts':have}})
              .then(function(r){return r.status===304?null:r.ok?r.json():Promise.reject(r.status);})
              .then(function(update){
                if(update){
                  etag=update.etag;
                  Object.keys(update.parts).forEach(function(id){
                    var part=document.getElementById('part-'+id);
                    if(part){part.innerHTML=update.parts[id].html; part.dataset.etag=update.parts[id].etag;}
                  });
                }
                ago(); live.textContent='live · updated '+new Date().toLocaleTimeString();
              })
              .catch(function(){live.textContent='live · hub unreachable';});
          }
          ago(); setInterval(refresh, {{refreshMilliseconds}});
        })();
        </script></body></html>
        """

    /// The overview's parts, in page order; each refreshes on its own.
    static let overviewParts = ["overview-counts", "overview-alerts", "overview-deployments", "overview-devices"]

    static let overviewCounts = """
        <h1>Fleet overview</h1>
        <div class="cards">
        <div class="card"><b id="count-devices">{{counts.devices}}</b>devices</div>
        <div class="card"><b class="online" id="count-online">{{counts.online}}</b>online</div>
        <div class="card"><b class="offline" id="count-offline">{{counts.offline}}</b>offline</div>
        <div class="card"><b class="unknown" id="count-unknown">{{counts.unknown}}</b>never seen</div>
        <div class="card"><b id="count-alerts">{{counts.alerts}}</b>alerts</div>
        <div class="card"><b><a href="/?status=problem" id="count-problems">{{counts.problems}}</a></b>problem devices</div>
        </div>
        """

    static let overviewAlerts = """
        <h2>Alerts</h2>
        <div id="alerts">{{#alerts}}<div class="alert" data-kind="{{kind}}">{{message}}</div>{{/alerts}}{{^alerts}}<div class="ok">No alerts.</div>{{/alerts}}
        {{#moreAlerts}}<p id="more-alerts">and {{.}} more (<code>fleethub alerts</code>)</p>{{/moreAlerts}}</div>
        """

    static let overviewDeployments = """
        <h2>Deployments</h2>
        <table id="deployments"><tr><th>deployment</th><th>targeted</th><th>rollout</th><th>applied</th><th>pending</th><th>failed</th><th>rolled back</th><th>module not running</th></tr>
        {{#rollouts}}<tr><td><a href="/deployments/{{name}}">{{name}}</a></td><td>{{targeted}}</td><td>{{> bar}}</td><td>{{applied}}</td><td>{{pending}}</td><td>{{failed}}</td><td>{{rolledBack}}</td><td>{{moduleNotRunning}}</td></tr>{{/rollouts}}
        </table>
        {{#hasStaged}}<h2>Rollouts</h2>
        <table id="rollouts"><tr><th>deployment</th><th>version</th><th>state</th><th>wave</th><th>updated</th><th>reason</th></tr>
        {{#staged}}<tr data-rollout="{{deployment}}"><td><a href="/rollouts/{{deployment}}">{{deployment}}</a></td><td>{{version}}</td><td class="rollout-{{state}}">{{state}}</td><td>{{wave}}</td><td>{{updated}}</td><td>{{reason}}</td></tr>{{/staged}}
        </table>{{/hasStaged}}
        """

    static let overviewDevices = """
        <h2>Devices</h2>
        <form method="get" action="/">id <input name="q" value="{{filter.text}}" placeholder="part of the id">
        tag <input name="tag" value="{{filter.tag}}" placeholder="key=value">
        status <select name="status">{{#filter.statuses}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/filter.statuses}}</select>
        <button>search</button></form>
        <p>Problem devices first. {{> pager}}</p>
        <table id="devices"><tr><th>device</th><th>status</th><th>problem</th><th>revision applied / desired</th><th>modules running</th><th>restarts</th><th>last seen</th><th>tags</th></tr>
        {{#devices}}<tr data-device="{{id}}"><td><a href="/devices/{{id}}">{{id}}</a></td><td class="{{connectivity}}">{{connectivity}}</td><td class="offline">{{problem}}</td><td>{{revision}}</td><td>{{modules}}</td><td>{{restarts}}</td><td><time datetime="{{lastSeenAt}}">{{lastSeen}}</time></td><td>{{#tags}}<span class="pill">{{.}}</span>{{/tags}}</td></tr>{{/devices}}
        </table>
        """

    static let pager = """
        <span class="pager">{{pager.shown}}{{#pager.previous}} · <a href="{{.}}" id="previous-page">previous</a>{{/pager.previous}}{{#pager.next}} · <a href="{{.}}" id="next-page">next</a>{{/pager.next}}</span>
        """

    static let bar = """
        <div class="bar">{{#segments}}<span class="{{state}}" style="width:{{percent}}%"></span>{{/segments}}</div>
        """

    static let device = """
        <h1>Device {{summary.id}} <span class="{{summary.connectivity}}" id="connectivity">{{summary.connectivity}}</span></h1>
        <div class="cards">
        <div class="card"><b>{{summary.revision}}</b>revision applied / desired</div>
        <div class="card"><b>{{summary.modules}}</b>modules running</div>
        <div class="card"><b>{{summary.restarts}}</b>restarts</div>
        <div class="card"><b>{{telemetryBacklog}}</b>telemetry buffered</div>
        <div class="card"><b><time datetime="{{summary.lastSeenAt}}">{{summary.lastSeen}}</time></b>last seen</div>
        </div>
        {{#desiredError}}<div class="alert">{{.}}</div>{{/desiredError}}
        <p>runtime {{runtimeVersion}} · up {{uptime}} · CPU {{cpu}} · memory {{memory}} · tags {{#summary.tags}}<span class="pill">{{.}}</span>{{/summary.tags}}</p>
        <h2>Modules</h2>
        <table id="modules"><tr><th>module</th><th>status</th><th>restarts</th><th>last exit</th><th>last error</th><th>inferences</th><th>p50 / p99 ms</th><th>bundle</th><th>shadow</th></tr>
        {{#modules}}<tr><td>{{name}}</td><td>{{status}}</td><td>{{restarts}}</td><td>{{lastExitCode}}</td><td>{{lastError}}</td><td>{{inferences}}</td><td>{{latency}}</td><td>{{label}}</td><td>{{shadow}}</td></tr>{{/modules}}
        </table>
        {{#hasDrift}}<h2>Input drift (PSI against the training data)</h2>
        <table id="drift"><tr><th>module</th><th>feature</th><th>PSI</th><th>values</th><th>window end</th></tr>
        {{#drift}}<tr data-feature="{{module}}/{{feature}}"><td>{{module}}</td><td>{{feature}}</td><td{{#drifted}} class="offline"{{/drifted}}>{{psi}}</td><td>{{count}}</td><td>{{windowEnd}}</td></tr>{{/drift}}
        </table>{{/hasDrift}}
        <h2>Recent reports</h2>
        {{#charts}}<figure style="display:inline-block;margin:0 16px 0 0"><figcaption>{{title}} (max {{maximum}})</figcaption>
        <svg width="{{width}}" height="{{height}}" viewBox="0 0 {{width}} {{height}}" role="img" aria-label="{{title}}"><polyline fill="none" stroke="#2f6fd6" stroke-width="2" points="{{points}}"/></svg></figure>{{/charts}}
        {{^charts}}<p>No reports yet.</p>{{/charts}}
        """

    static let deployment = """
        <h1>Deployment {{name}} <span class="pill">version {{version}}</span></h1>
        <p>target <code>{{target}}</code> · priority {{priority}} · modules {{#modules}}<a class="pill" href="{{href}}">{{text}}</a>{{/modules}}</p>
        <div class="cards">
        <div class="card"><b>{{targeted}}</b>targeted</div>
        <div class="card"><b class="online">{{applied}}</b>applied</div>
        <div class="card"><b>{{pending}}</b>pending</div>
        <div class="card"><b class="offline">{{failed}}</b>failed</div>
        <div class="card"><b>{{rolledBack}}</b>rolled back</div>
        <div class="card"><b>{{moduleNotRunning}}</b>module not running</div>
        </div>
        <p>{{> bar}}</p>
        {{#hasRollout}}<p><a href="/rollouts/{{name}}">staged rollout of version {{version}}</a></p>{{/hasRollout}}
        <h2>Devices</h2>
        <p>Devices not applied first. {{> pager}}</p>
        <table id="rollout"><tr><th>device</th><th>state</th><th>revision reported / desired</th><th>running</th><th>error</th></tr>
        {{#devices}}<tr><td><a href="/devices/{{deviceId}}">{{deviceId}}</a></td><td>{{state}}</td><td>{{revision}}</td><td>{{running}}</td><td>{{error}}</td></tr>{{/devices}}
        </table>
        <h2>Versions</h2>
        <table id="versions"><tr><th>version</th><th>deployed</th><th>how</th><th>modules</th></tr>
        {{#versions}}<tr data-version="{{version}}"><td>{{version}}{{#current}} (current){{/current}}</td><td>{{created}}</td><td>{{origin}}</td><td>{{#modules}}<span class="pill">{{.}}</span>{{/modules}}</td></tr>
        <tr><td colspan="4"><details><summary>manifest of version {{version}}</summary><pre>{{manifest}}</pre></details></td></tr>{{/versions}}
        </table>
        """

    static let deployments = """
        <h1>Deployments</h1>
        <table id="deployment-list"><tr><th>deployment</th><th>version</th><th>target</th><th>priority</th><th>modules</th><th>targeted</th><th>applied</th><th>not applied</th></tr>
        {{#rows}}<tr data-deployment="{{name}}"><td><a href="/deployments/{{name}}">{{name}}</a></td><td>{{version}}</td><td><code>{{target}}</code></td><td>{{priority}}</td><td>{{#modules}}<a class="pill" href="{{href}}">{{text}}</a>{{/modules}}</td><td>{{targeted}}</td><td>{{applied}}</td><td>{{notApplied}}</td></tr>{{/rows}}
        </table>
        {{^rows}}<p>No deployments yet: <code>fleethub deploy MANIFEST</code>.</p>{{/rows}}
        """

    static let models = """
        <h1>Models</h1>
        <table id="model-list"><tr><th>model</th><th>versions</th><th>latest</th><th>registered</th><th>tags of the latest</th></tr>
        {{#rows}}<tr data-model="{{name}}"><td><a href="/models/{{name}}">{{name}}</a></td><td>{{versions}}</td><td>{{latest}}</td><td>{{created}}</td><td>{{detail}}</td></tr>{{/rows}}
        </table>
        {{^rows}}<p>No models yet: <code>fleethub model register</code>.</p>{{/rows}}
        """

    static let model = """
        <h1>Model {{name}}</h1>
        <table id="model-versions"><tr><th>version</th><th>registered</th><th>flavour</th><th>tags</th><th>files</th><th>modules packaging it</th><th>running on</th></tr>
        {{#versions}}<tr id="v{{version}}" data-version="{{reference}}"><td>{{version}}</td><td>{{created}}</td><td>{{flavour}}</td><td>{{#tags}}<span class="pill">{{.}}</span>{{/tags}}</td><td>{{#files}}<div><code>{{.}}</code></div>{{/files}}</td>
        <td>{{#modules}}<a class="pill" href="{{href}}">{{text}}</a>{{/modules}}</td>
        <td data-running="{{running.count}}">{{running.count}} devices {{#running.devices}}<a class="pill" href="{{href}}">{{text}}</a>{{/running.devices}}{{#running.more}} and {{.}} more{{/running.more}}</td></tr>{{/versions}}
        </table>
        """

    static let modules = """
        <h1>Modules</h1>
        <table id="module-list"><tr><th>module</th><th>versions</th><th>latest</th><th>packaged</th><th>kind, size of the latest</th></tr>
        {{#rows}}<tr data-module="{{name}}"><td><a href="/modules/{{name}}">{{name}}</a></td><td>{{versions}}</td><td>{{latest}}</td><td>{{created}}</td><td>{{detail}}</td></tr>{{/rows}}
        </table>
        {{^rows}}<p>No modules yet: <code>fleethub module package</code>.</p>{{/rows}}
        """

    static let module = """
        <h1>Module {{name}}</h1>
        <table id="module-versions"><tr><th>version</th><th>packaged</th><th>bundle</th><th>models</th><th>requirements</th><th>deployments using it</th><th>running on</th></tr>
        {{#versions}}<tr id="v{{version}}" data-version="{{reference}}"><td>{{version}}</td><td>{{created}}</td>
        <td>{{kind}} · {{size}} · <code>{{entry}}</code><div><code class="digest">{{digest}}</code></div></td>
        <td>{{#models}}<a class="pill" href="{{href}}">{{text}}</a>{{/models}}</td>
        <td>{{#requirements}}<div><code>{{.}}</code></div>{{/requirements}}</td>
        <td>{{#deployments}}<a class="pill" href="{{href}}">{{text}}</a>{{/deployments}}</td>
        <td data-running="{{running.count}}">{{running.count}} devices {{#running.devices}}<a class="pill" href="{{href}}">{{text}}</a>{{/running.devices}}{{#running.more}} and {{.}} more{{/running.more}}</td></tr>{{/versions}}
        </table>
        """

    static let rollout = """
        <h1>Rollout of {{deployment}} version {{version}} <span class="rollout-{{state}}" id="rollout-state">{{state}}</span></h1>
        <p>previous version {{previous}} · <a href="/deployments/{{deployment}}">deployment</a></p>
        {{#reason}}<div class="alert" id="rollout-reason">{{.}}</div>{{/reason}}
        {{#waiting}}<div class="alert" id="rollout-waiting">waiting: {{.}}</div>{{/waiting}}
        <div class="cards">
        <div class="card"><b id="rollout-wave">{{wave}}</b>wave</div>
        <div class="card"><b>{{updated}}</b>updated</div>
        {{#counts}}<div class="card"><b>{{count}}</b>{{state}}</div>{{/counts}}
        </div>
        <h2>Criteria</h2>
        <table id="criteria"><tr><th>criterion</th><th>value</th><th>threshold</th><th>ok</th><th>detail</th></tr>
        {{#criteria}}<tr><td>{{name}}</td><td>{{value}}</td><td>{{threshold}}</td><td class="{{okClass}}">{{ok}}</td><td>{{detail}}</td></tr>{{/criteria}}
        </table>
        {{#shadow}}<p id="shadow">shadow: {{.}}</p>{{/shadow}}
        <h2>Devices</h2>
        <table id="rollout-devices"><tr><th>device</th><th>wave</th><th>state</th><th>modules</th><th>error</th></tr>
        {{#devices}}<tr><td><a href="/devices/{{deviceId}}">{{deviceId}}</a></td><td>{{wave}}</td><td>{{state}}</td><td>{{modules}}</td><td>{{error}}</td></tr>{{/devices}}
        </table>
        <h2>History</h2>
        <ul id="rollout-events">{{#events}}<li>{{.}}</li>{{/events}}</ul>
        """
}
