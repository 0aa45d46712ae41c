from aibrain.cli import main

main(prog_name="aibrain")
