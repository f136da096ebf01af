"""The `om` stage: ONNX -> Ascend OM through CANN's atc, with every option validated before atc runs.

Modules: options (facts about atc), validate (combination rules), argv (the command line), files (cfg
files atc reads), run (finding and running atc), errors (atc error codes), stage (the pipeline),
script (--emit-script), paddlex (--paddlex layout)."""
