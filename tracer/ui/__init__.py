"""The Textual app: renders what the core computes, never computes verdicts or decodes itself.

``app`` (layout, bindings, messages, detail panes, ``create_app``/``run_app``) with its mixins ``loading``
(index, cluster and hop-analysis loaders), ``navigation`` (filter, go to, hops, follow, panes) and ``triage``
(flows, reachability, export); the model ``session``; widgets ``packet_list``, ``layer_tree``, ``hex_view``,
``hop_ladder``, ``verdict_panel``, ``status_bar``, ``prompt_bar``; screens ``flows_screen``, ``reach_screen``,
``help_screen``; pure helpers ``columns``, ``safe`` (inert text), ``export`` (pcapng), ``keymap``. The
k8s.*/hop.role/verdict filter fields are the core's (``tracer.hops.fields``). Styles: ``tracer.tcss``.
"""
