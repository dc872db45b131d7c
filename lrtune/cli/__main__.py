from lrtune.cli import main

main()
