"""The reports' plots: runs a gnuplot script that writes PREFIX.png and says where the report
is; a report without its plot (no gnuplot) is still a report."""
import subprocess


def render(script, prefix):
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
        print(f"\nreport: {prefix}.md, {prefix}.png")
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"\nreport: {prefix}.md (no plot: {e})")
