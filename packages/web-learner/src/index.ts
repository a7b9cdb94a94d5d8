export const PACKAGE_NAME = "@oiafed/web-learner";
