// Routing between the three views by URL hash (#/jobs, #/job/<id>, #/compare/<id>,<id>...);
// ids in the hash are not secrets, the API key never appears in a URL.
"use strict";
(() => {
  const {$} = Lamina;
  const views = {jobs: Lamina.jobsView, job: Lamina.jobView, compare: Lamina.compareView};

  function route() {
    const [, name = "jobs", arg = ""] = location.hash.split("/");
    const view = views[name] ? name : "jobs";
    for (const [k, v] of Object.entries(views)) {
      $("view-" + k).hidden = k !== view;
      if (k !== view) v.hide();
    }
    for (const [id, on] of [["nav-jobs", view === "jobs"], ["nav-compare", view === "compare"]])
      if (on) $(id).setAttribute("aria-current", "page"); else $(id).removeAttribute("aria-current");
    if (view === "jobs") { document.title = "Lamina jobs"; views.jobs.show(); }
    else if (view === "job") views.job.show(decodeURIComponent(arg));
    else { document.title = "Lamina · compare"; views.compare.show(arg ? arg.split(",") : []); }
    return view;
  }

  Lamina.initAuth();
  for (const v of Object.values(views)) v.init();
  window.addEventListener("hashchange", () => { route(); $("main").focus({preventScroll: true}); });
  window.addEventListener("lamina:key", route);
  route();
})();
